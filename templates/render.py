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
from collections.abc import Callable
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
    nodes,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markdown_it import MarkdownIt
from markupsafe import Markup

from templates.checkin import CHOICES, QUESTION
from templates.checkin import URL_FIELD as CHECKIN_FIELD

LAYOUTS = Path(__file__).parent / "layouts"
MAX_OUTPUT = 256 * 1024  # a rendered email larger than this is a template bug, not content

# Values that differ per recipient; everything else is rendered once.
PLACEHOLDER_FIELDS = ("first_name", "unsubscribe_url", "preferences_url", "confirm_url")
# "@@" survives Markdown link normalisation, CSS inlining and HTML-to-text untouched. Names may
# carry digits after the first letter (tracked links are ``link_0``, ``link_1`` …).
_TOKEN = re.compile(r"@@([a-z][a-z0-9_]*)@@")


def html_token(name: str) -> str:
    return f"@@{name}@@"


def text_token(name: str) -> str:
    return f"@@{name}__t@@"


class TemplateProblem(ValueError):
    """A staff-written template cannot be used; ``line`` is 1-based within its body when known."""

    def __init__(self, message: str, line: int | None = None, *, part: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.part = part  # "subject", "preheader" or "body" when known


@dataclass(frozen=True)
class ClinicInfo:
    name: str
    address: str
    from_email: str
    booking_url: str
    base_url: str
    # Where urgent-care sections send people; a clinic outside the UK sets its own.
    emergency_number: str = "999"
    urgent_advice: str = "NHS 111"
    # The clinic's look: a logo image (none when unset) and the colour of headings and the button.
    logo_url: str | None = None
    brand_colour: str = "#17453b"

    def as_context(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address": self.address,
            "booking_url": self.booking_url,
            "emergency_number": self.emergency_number,
            "urgent_advice": self.urgent_advice,
        }


@dataclass(frozen=True)
class Content:
    """One email as staff wrote it: Jinja2 + Markdown body, subject and preheader."""

    subject: str
    preheader: str
    body: str
    name: str = "<email>"  # where it came from, for error messages
    # The one call to action, shown as a button after the body: (label, url). The url may be a
    # template such as "{{ clinic.booking_url }}"; it is rendered in the sandbox like the body.
    button: tuple[str, str] | None = None


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
    pattern = re.compile(r"@@[a-z][a-z0-9_]*@@")

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


# The filters staff may use. Anything else (``safe``, ``attr``, ``format``, ``map`` …) either
# defeats escaping, reaches attributes by name, or can blow up the output; it is refused at
# validation with a plain message.
ALLOWED_FILTERS = frozenset(
    {
        "capitalize",
        "d",
        "default",
        "e",
        "escape",
        "first",
        "join",
        "last",
        "length",
        "lower",
        "replace",
        "title",
        "trim",
        "truncate",
        "upper",
        "wordcount",
    }
)
_MAX_SEQUENCE = 10_000  # longest string or list a template may build with ``*``


class _EmailSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with ``*`` and ``**`` bounded, so ``{{ 'x' * 10**10 }}`` cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(n, int)
                if sized and len(seq) * n > _MAX_SEQUENCE:
                    raise SecurityError("result too large")
        return super().call_binop(context, operator, left, right)


def _sandbox() -> ImmutableSandboxedEnvironment:
    env = _EmailSandbox(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    # Staff templates may never mark text as safe HTML or reach attributes by name.
    for name in list(env.filters):
        if name not in ALLOWED_FILTERS:
            del env.filters[name]
    env.globals.clear()
    return env


def _first_line(ast: nodes.Template, match: Callable[[nodes.Node], bool]) -> int | None:
    for node in ast.find_all(nodes.Node):
        if match(node):
            return int(node.lineno)
    return None


def _static_problems(
    ast: nodes.Template, label: str, allowed: frozenset[str], fields: dict[str, frozenset[str]]
) -> None:
    """Refuse what the sandbox would only catch at render time, with the line it is on."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else None
        if name is not None and name.startswith("_"):
            raise TemplateProblem(
                f"{label}: '{name}' reaches into Python internals, which email templates may not "
                "do; use only the variables listed in the authoring guide",
                node.lineno,
                part=label,
            )
        if (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and node.node.name in fields
            and node.attr not in fields[node.node.name]
        ):
            known = ", ".join(f"{node.node.name}.{f}" for f in sorted(fields[node.node.name]))
            raise TemplateProblem(
                f"{label}: unknown variable '{node.node.name}.{node.attr}' (allowed: {known})",
                node.lineno,
                part=label,
            )
    for node in ast.find_all(nodes.Filter):
        if node.name not in ALLOWED_FILTERS:
            if node.name in ("safe", "forceescape"):
                why = (
                    f"'|{node.name}' is not allowed: email templates always escape values, "
                    "so remove it"
                )
            else:
                why = (
                    f"the filter '|{node.name}' is not available in email templates "
                    f"(filters you can use: {', '.join(sorted(ALLOWED_FILTERS))})"
                )
            raise TemplateProblem(f"{label}: {why}", node.lineno, part=label)
    unknown = sorted(meta.find_undeclared_variables(ast) - allowed)
    if unknown:
        first = unknown[0]
        line = _first_line(ast, lambda n: isinstance(n, nodes.Name) and n.name == first)
        names = ", ".join(f"'{u}'" for u in unknown)
        raise TemplateProblem(
            f"{label}: unknown variable {names} (allowed variables: {', '.join(sorted(allowed))})",
            line,
            part=label,
        )


class Renderer:
    """Renders staff content inside the clinic's layout. Thread-safe after construction."""

    def __init__(self, clinic: ClinicInfo) -> None:
        self.clinic = clinic
        self.sandbox = _sandbox()
        self.markdown = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(
            ["replacements", "smartquotes"]
        )
        # Only for validation: finds raw HTML that the rendering parser would show as text.
        self._html_aware = MarkdownIt("commonmark", {"html": True})
        self.layouts = Environment(
            loader=FileSystemLoader(LAYOUTS),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
        )
        self.inliner = css_inline.CSSInliner(keep_style_tags=True)

    @cached_property
    def _text_config(self) -> ParserConfig:
        return ParserConfig(display_links=True, display_images=True)

    # -- validation -------------------------------------------------------------------------
    def check(self, content: Content, allowed: frozenset[str]) -> None:
        """Raise :class:`TemplateProblem` if the content would fail or escape the sandbox.

        ``line`` on the problem is 1-based within the part named by ``part`` (subject,
        preheader or body).
        """
        fields = {"clinic": frozenset(self.clinic.as_context())} if "clinic" in allowed else {}
        for label, source in (
            ("subject", content.subject),
            ("preheader", content.preheader),
            ("body", content.body),
        ):
            try:
                ast = self.sandbox.parse(source)
            except TemplateSyntaxError as exc:
                raise TemplateProblem(
                    f"{label}: template syntax: {exc.message}", exc.lineno, part=label
                ) from None
            _static_problems(ast, label, allowed, fields)
            try:
                self.sandbox.compile(ast)
            except TemplateSyntaxError as exc:
                raise TemplateProblem(f"{label}: {exc.message}", exc.lineno, part=label) from None
        self._check_markdown(content.body)
        # Allowed variables the caller fills per recipient (e.g. record_url) render as tokens.
        extra = {n: html_token(n) for n in allowed if n != "clinic" and n not in PLACEHOLDER_FIELDS}
        self.render(content, reason="(validation)", list_name="validation", extra=extra)

    def _check_markdown(self, body: str) -> None:
        """No raw HTML (it would show as text), and every image has alt text: many clients block
        images, and screen readers read the alt text aloud."""
        for token in self._html_aware.parse(body):
            if token.type == "html_block" or any(
                c.type == "html_inline" for c in token.children or ()
            ):
                line = token.map[0] + 1 if token.map else None
                raise TemplateProblem(
                    "body: raw HTML is not allowed in an email body (it would show as text); "
                    "write Markdown instead, like **bold** or [a link](https://…)",
                    line,
                    part="body",
                )
            for child in token.children or ():
                if child.type == "image" and not child.content.strip():
                    line = token.map[0] + 1 if token.map else None
                    raise TemplateProblem(
                        "body: an image has no alt text; write what it shows between the "
                        "brackets, like ![A person sitting upright at a desk](https://…)",
                        line,
                        part="body",
                    )

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
            raise TemplateProblem(
                f"{label}: not allowed in an email template ({exc})",
                _template_line(exc),
                part=label,
            ) from None
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"{label}: {exc.message}", exc.lineno, part=label) from None
        except TemplateError as exc:
            raise TemplateProblem(f"{label}: {exc}", _template_line(exc), part=label) from None
        if len(out) > MAX_OUTPUT:
            raise TemplateProblem(
                f"{label}: renders to more than {MAX_OUTPUT} characters", part=label
            )
        return out

    def render(
        self,
        content: Content,
        *,
        reason: str,
        list_name: str,
        extra: dict[str, Any] | None = None,
        with_unsubscribe: bool = True,
        checkin: bool = False,
    ) -> Rendered:
        """Render subject, HTML and text once, with per-recipient tokens left in place.

        ``reason`` is the footer's "why you get this"; ``with_unsubscribe`` is False only for
        transactional mail (a confirmation request) that has no list to leave. ``checkin`` adds
        the one-click check-in block (:mod:`templates.checkin`) after the body, whose links use
        the per-recipient token ``checkin_url``.
        """
        ctx = self._context(extra)
        subject = html.unescape(self._sandboxed(content.subject, ctx, "subject")).strip()
        preheader = html.unescape(self._sandboxed(content.preheader, ctx, "preheader")).strip()
        body_md = self._sandboxed(content.body, ctx, "body")
        body_html = self.markdown.render(body_md)
        if content.button is not None:
            label, url = content.button
            body_html += self.layouts.get_template("button.html").render(
                label=label, url=html.unescape(self._sandboxed(url, ctx, "button")).strip()
            )
        footer = {
            "reason": reason,
            "unsubscribe_url": html_token("unsubscribe_url") if with_unsubscribe else None,
            "preferences_url": html_token("preferences_url") if with_unsubscribe else None,
        }
        block = (
            {"question": QUESTION, "choices": CHOICES, "url": html_token(CHECKIN_FIELD)}
            if checkin
            else None
        )
        page = self.layouts.get_template("base.html").render(
            subject=subject,
            preheader=preheader,
            body=Markup(body_html),  # noqa: S704 - produced by markdown-it with raw HTML disabled
            clinic=self.clinic,
            footer=footer,
            list_name=list_name,
            checkin=block,
        )
        inlined = self.inliner.inline(page)
        text_body = get_text(body_html, self._text_config).strip()
        if block is not None:
            checkin_text = self.layouts.get_template("checkin.txt").render(
                clinic=self.clinic, checkin=block
            )
            text_body = f"{text_body}\n\n{checkin_text.strip()}"
        text_footer = self.layouts.get_template("footer.txt").render(
            clinic=self.clinic, footer=footer
        )
        text = _to_text_tokens(f"{text_body}\n\n{text_footer.strip()}\n")
        used = frozenset(_TOKEN.findall(inlined))
        return Rendered(subject=_to_text_tokens(subject), html=inlined, text=text, fields=used)


def _template_line(exc: BaseException) -> int | None:
    """The template line a render-time error came from (Jinja maps its frames to it)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _to_text_tokens(s: str) -> str:
    return _TOKEN.sub(lambda m: text_token(m.group(1)), s)
