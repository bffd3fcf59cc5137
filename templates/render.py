"""Render once per (step, variant); fill per-recipient values afterwards.

Staff-written Markdown runs in Jinja2's ``ImmutableSandboxedEnvironment`` with autoescape and
``StrictUndefined``; ``safe`` and ``attr`` are not available at all. Per-recipient values
(first name, unsubscribe and preference links …) are rendered as opaque *tokens*, so the expensive
part (Markdown, layout, CSS inlining, the text part) happens once and a provider such as SendGrid
can substitute each recipient's values itself. HTML and text parts use different tokens, because
a value is HTML-escaped in one and raw in the other.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import css_inline
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    meta,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markdown_it import MarkdownIt
from markupsafe import Markup

LAYOUTS = Path(__file__).parent / "layouts"
MAX_OUTPUT = 256 * 1024  # a rendered email larger than this is a template bug, not content

# Values that differ per recipient; everything else is rendered once.
PLACEHOLDER_FIELDS = ("first_name", "unsubscribe_url", "preferences_url", "confirm_url")
# "@@" survives Markdown link normalisation, CSS inlining and HTML-to-text untouched.
_TOKEN = re.compile(r"@@([a-z_]+)@@")


def html_token(name: str) -> str:
    return f"@@{name}@@"


def text_token(name: str) -> str:
    return f"@@{name}__t@@"


class TemplateProblem(ValueError):
    """A staff-written template cannot be used; ``line`` is 1-based within its body when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class ClinicInfo:
    name: str
    address: str
    from_email: str
    booking_url: str
    base_url: str

    def as_context(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address, "booking_url": self.booking_url}


@dataclass(frozen=True)
class Content:
    """One email as staff wrote it: Jinja2 + Markdown body, subject and preheader."""

    subject: str
    preheader: str
    body: str
    name: str = "<email>"  # where it came from, for error messages


@dataclass(frozen=True)
class Rendered:
    """A rendered email whose per-recipient values are still tokens."""

    subject: str
    html: str
    text: str
    fields: frozenset[str] = field(default_factory=frozenset)


def fill(rendered: Rendered, values: dict[str, str]) -> tuple[str, str, str]:
    """Return ``(subject, html, text)`` with one recipient's values in place of the tokens."""
    subs = substitutions(values)
    pattern = re.compile(r"@@[a-z_]+@@")

    def repl(m: re.Match[str]) -> str:
        return subs.get(m.group(0), m.group(0))

    return (
        pattern.sub(repl, rendered.subject),
        pattern.sub(repl, rendered.html),
        pattern.sub(repl, rendered.text),
    )


def substitutions(values: dict[str, str]) -> dict[str, str]:
    """The token → value map (HTML-escaped for the HTML part), as SendGrid ``substitutions``."""
    out: dict[str, str] = {}
    for name, value in values.items():
        out[html_token(name)] = html.escape(value, quote=True)
        out[text_token(name)] = value
    return out


def _sandbox() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True
    )
    # Staff templates may never mark text as safe HTML or reach attributes by name.
    for name in ("safe", "attr", "xmlattr", "indent", "wordwrap", "pprint"):
        env.filters.pop(name, None)
    env.globals.clear()
    return env


class Renderer:
    """Renders staff content inside the clinic's layout. Thread-safe after construction."""

    def __init__(self, clinic: ClinicInfo) -> None:
        self.clinic = clinic
        self.sandbox = _sandbox()
        self.markdown = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(
            ["replacements", "smartquotes"]
        )
        self.layouts = Environment(
            loader=FileSystemLoader(LAYOUTS),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
        )
        self.inliner = css_inline.CSSInliner(keep_style_tags=True)

    @cached_property
    def _text_config(self) -> ParserConfig:
        return ParserConfig(display_links=True)

    # -- validation -------------------------------------------------------------------------
    def check(self, content: Content, allowed: frozenset[str]) -> None:
        """Raise :class:`TemplateProblem` if the content would fail or escape the sandbox."""
        for label, source in (
            ("subject", content.subject),
            ("preheader", content.preheader),
            ("body", content.body),
        ):
            try:
                ast = self.sandbox.parse(source)
            except TemplateSyntaxError as exc:
                raise TemplateProblem(f"{label}: {exc.message}", exc.lineno) from None
            unknown = sorted(meta.find_undeclared_variables(ast) - allowed)
            if unknown:
                raise TemplateProblem(
                    f"{label}: unknown variable {', '.join(unknown)} "
                    f"(allowed: {', '.join(sorted(allowed))})"
                )
            try:
                self.sandbox.compile(ast)
            except TemplateSyntaxError as exc:  # e.g. a filter that does not exist, like |safe
                raise TemplateProblem(f"{label}: {exc.message}", exc.lineno) from None
        self.render(content, reason="(validation)", list_name="validation")

    # -- rendering --------------------------------------------------------------------------
    def _context(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        ctx: dict[str, Any] = {"clinic": self.clinic.as_context()}
        for name in PLACEHOLDER_FIELDS:
            ctx[name] = html_token(name)
        if extra:
            ctx.update(extra)
        return ctx

    def _sandboxed(self, source: str, ctx: dict[str, Any], label: str) -> str:
        try:
            out = self.sandbox.from_string(source).render(ctx)
        except SecurityError as exc:
            raise TemplateProblem(f"{label}: not allowed in an email template ({exc})") from None
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"{label}: {exc.message}", exc.lineno) from None
        except TemplateError as exc:
            raise TemplateProblem(f"{label}: {exc}") from None
        if len(out) > MAX_OUTPUT:
            raise TemplateProblem(f"{label}: renders to more than {MAX_OUTPUT} characters")
        return out

    def render(
        self,
        content: Content,
        *,
        reason: str,
        list_name: str,
        extra: dict[str, Any] | None = None,
        with_unsubscribe: bool = True,
    ) -> Rendered:
        """Render subject, HTML and text once, with per-recipient tokens left in place.

        ``reason`` is the footer's "why you get this"; ``with_unsubscribe`` is False only for
        transactional mail (a confirmation request) that has no list to leave.
        """
        ctx = self._context(extra)
        subject = html.unescape(self._sandboxed(content.subject, ctx, "subject")).strip()
        preheader = html.unescape(self._sandboxed(content.preheader, ctx, "preheader")).strip()
        body_md = self._sandboxed(content.body, ctx, "body")
        body_html = self.markdown.render(body_md)
        footer = {
            "reason": reason,
            "unsubscribe_url": html_token("unsubscribe_url") if with_unsubscribe else None,
            "preferences_url": html_token("preferences_url") if with_unsubscribe else None,
        }
        page = self.layouts.get_template("base.html").render(
            subject=subject,
            preheader=preheader,
            body=Markup(body_html),  # noqa: S704 - produced by markdown-it with raw HTML disabled
            clinic=self.clinic,
            footer=footer,
            list_name=list_name,
        )
        inlined = self.inliner.inline(page)
        text_body = get_text(body_html, self._text_config).strip()
        text_footer = self.layouts.get_template("footer.txt").render(
            clinic=self.clinic, footer=footer
        )
        text = _to_text_tokens(f"{text_body}\n\n{text_footer.strip()}\n")
        used = frozenset(_TOKEN.findall(inlined))
        return Rendered(subject=_to_text_tokens(subject), html=inlined, text=text, fields=used)


def _to_text_tokens(s: str) -> str:
    return _TOKEN.sub(lambda m: text_token(m.group(1)), s)
