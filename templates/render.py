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
import string
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any

import css_inline
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.filters import do_join, do_replace
from jinja2.nodes import EvalContext
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markdown_it import MarkdownIt
from markupsafe import Markup

from core.errors import InputError
from templates import check_memory, warning_signs
from templates.checkin import CHOICES, QUESTION
from templates.checkin import URL_FIELD as CHECKIN_FIELD

LAYOUTS = Path(__file__).parent / "layouts"
MAX_OUTPUT = 256 * 1024  # a rendered email larger than this is a template bug, not content

# Values that differ per recipient; everything else is rendered once.
PLACEHOLDER_FIELDS = ("first_name", "unsubscribe_url", "preferences_url", "confirm_url")
# The warning-signs table as Markdown (templates.warning_signs.TEMPLATE_FIELDS): in every
# render's context, so any email may show the signs in the clinic's own numbers.
WARNING_SIGNS = "warning_signs"
# "@@" survives Markdown link normalisation, CSS inlining and HTML-to-text untouched. Names may
# carry digits after the first letter (tracked links are ``link_0``, ``link_1`` …).
_TOKEN = re.compile(r"@@([a-z][a-z0-9_]*)@@")


def html_token(name: str) -> str:
    return f"@@{name}@@"


def text_token(name: str) -> str:
    return f"@@{name}__t@@"


class TemplateProblem(InputError, ValueError):
    """A staff-written template cannot be used; ``line`` is 1-based within its body when known."""

    def __init__(self, message: str, line: int | None = None, *, part: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.part = part  # "subject", "preheader" or "body" when known
        # Every problem found in the same content, this one first (validation reports them all).
        self.all: list[TemplateProblem] = [self]

    @classmethod
    def of(cls, problems: list[TemplateProblem]) -> TemplateProblem:
        first = problems[0]
        first.all = list(problems)
        return first


@dataclass(frozen=True)
class ClinicInfo:
    name: str
    address: str
    from_email: str
    booking_url: str
    base_url: str
    # Where urgent-care sections send people, and what readers call their family doctor; a
    # clinic outside the UK sets its own (CLINICMAIL_EMERGENCY_NUMBER, _URGENT_ADVICE,
    # _FAMILY_DOCTOR).
    emergency_number: str = "999"
    urgent_advice: str = "NHS 111"
    family_doctor: str = "GP"
    # The clinic's look: a logo image (none when unset) and the colour of headings and the button.
    logo_url: str | None = None
    brand_colour: str = "#17453b"
    # Whether the clinic follows up red-flag signups personally (CLINICMAIL_FOLLOWUP_WITHIN not
    # ``off``): the safety email promises contact only then (``{% if clinic.follow_up %}``).
    follow_up: bool = True

    def as_context(self) -> dict[str, str | bool]:
        return {
            "follow_up": self.follow_up,
            "name": self.name,
            "address": self.address,
            "booking_url": self.booking_url,
            "emergency_number": self.emergency_number,
            "urgent_advice": self.urgent_advice,
            "family_doctor": self.family_doctor,
        }

    def care_lines(self) -> dict[str, str]:
        """The three settings the warning signs name (:mod:`templates.warning_signs`)."""
        return warning_signs.lines_of(self)


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
        as_html, as_text = _tokens(name)
        out[as_html] = html.escape(value, quote=True)
        out[as_text] = value
    return out


@cache  # a handful of names, each met for every recipient of a batch
def _tokens(name: str) -> tuple[str, str]:
    return html_token(name), text_token(name)


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
# What one render may do. Each bound turns a template that would hang or eat memory into a
# TemplateProblem with its line, at validation and at send time alike.
MAX_STEPS = 100_000  # loop iterations, calls and operators in one render
MAX_VALUE = MAX_OUTPUT  # longest string, list or dict any single operation may produce
MAX_WIDTH = _MAX_SEQUENCE  # largest width or precision in a format spec, or padding width
MAX_INT_BITS = 4096  # largest integer an operator may produce (about 1,200 digits)

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")


class TooMuchWork(InputError, SecurityError):
    """A render went past one of the bounds above."""


class _Budget:
    """The steps left in the render running in this context (thread or task)."""

    def __init__(self, steps: int) -> None:
        self.left = steps

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise TooMuchWork(
                f"the template does too much work (more than {MAX_STEPS} loop iterations, calls "
                "and operations); nested loops or recursion are the usual cause"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("clinicmail_template_budget", default=None)


def _spend() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend()


def _checked(value: Any) -> Any:
    """Refuse an intermediate value too large to be part of one email."""
    if (
        isinstance(value, (str, bytes, list, tuple, dict, set, frozenset))
        and _weight(value) > MAX_VALUE
    ):
        raise TooMuchWork(f"a value grows past {MAX_VALUE} characters or items")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TooMuchWork("a number grows too large")
    return value


def _weight(value: Any, seen: dict[int, int] | None = None) -> int:
    """About how many characters ``value`` becomes when printed, without printing it.

    A list may hold the same object many times (``[s] * 100`` is 100 references to one ``s``),
    and printing expands every reference, so the weight counts each one; ``seen`` remembers
    each object's weight so a shared object is measured once. The count stops soon after it
    passes :data:`MAX_VALUE`: only "too large" matters."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, (bool, type(None), float)):
        return 8
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if not isinstance(value, (list, tuple, dict, set, frozenset)):
        return 8
    memo: dict[int, int] = {} if seen is None else seen
    known = memo.get(id(value))
    if known is not None:
        return known
    total = 2
    items: Any = value.items() if isinstance(value, dict) else value
    for item in items:
        total += 2 + (
            _weight(item[0], memo) + _weight(item[1], memo)
            if isinstance(value, dict)
            else _weight(item, memo)
        )
        if total > MAX_VALUE:
            break
    memo[id(value)] = total
    return total


def _sized(value: Any, what: str = "a value") -> Any:
    """Refuse a value that would print as more than :data:`MAX_VALUE` characters, before
    anything prints it (``{{ }}``, a filter, ``~``, a method call or an operator)."""
    if _weight(value) > MAX_VALUE:
        raise TooMuchWork(f"{what} would be longer than {MAX_VALUE} characters")
    return value


def _check_width(n: Any, what: str) -> None:
    if isinstance(n, int) and n > MAX_WIDTH:
        raise TooMuchWork(f"{what} {n} is too large (at most {MAX_WIDTH})")


def _check_percent_format(fmt: str) -> None:
    for m in _PERCENT_SPEC.finditer(fmt):
        for part in m.groups():
            if part == "*":
                raise TooMuchWork("'*' widths in %-formatting are not allowed")
            if part:
                _check_width(int(part), "a %-format width or precision of")


def _check_brace_format(fmt: str) -> int:
    """Refuse widths too large; return how many fields the format string has."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return 0  # str.format raises its own error for a malformed string
    for _literal, _field, spec, _conversion in parsed:
        if spec and "{" in spec:
            raise TooMuchWork("nested fields in a format spec are not allowed")
        for number in _NUMBER.findall(spec or ""):
            _check_width(int(number), "a format width or precision of")
    return sum(1 for _literal, name, _spec, _conv in parsed if name is not None)


def _replaced_size(s: str, old: str, new: str, count: int | None) -> int:
    hits = s.count(old) if old else len(s) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * (len(new) - len(old))


def _check_str_call(method: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a ``str`` method call whose result would be too large, before it runs."""
    if method in ("ljust", "rjust", "center", "zfill") and args:
        _check_width(args[0], "a padding width of")
    elif method == "expandtabs":
        size = kwargs.get("tabsize", args[0] if args else 8)
        if isinstance(size, int) and text.count("\t") * size > MAX_VALUE:
            raise TooMuchWork(f"expandtabs would produce more than {MAX_VALUE} characters")
    elif method == "replace" and len(args) >= 2 and all(isinstance(a, str) for a in args[:2]):
        count = args[2] if len(args) > 2 and isinstance(args[2], int) else None
        if _replaced_size(text, args[0], args[1], count) > MAX_VALUE:
            raise TooMuchWork(f"replace would produce more than {MAX_VALUE} characters")
    elif method == "join" and args:
        _check_join(args[0], text)
    elif method in ("format", "format_map"):
        fields = _check_brace_format(text)
        if fields * _weight([*args, *kwargs.values()]) + len(text) > MAX_VALUE:
            raise TooMuchWork(f"format would produce more than {MAX_VALUE} characters")


def _check_join(items: Any, sep: str) -> None:
    if isinstance(items, str):
        if len(items) + len(sep) * max(len(items) - 1, 0) > MAX_VALUE:
            raise TooMuchWork(f"join would produce more than {MAX_VALUE} characters")
    elif isinstance(items, (list, tuple)):
        size = sum(len(x) if isinstance(x, str) else 0 for x in items)
        if size + len(sep) * max(len(items) - 1, 0) > MAX_VALUE:
            raise TooMuchWork(f"join would produce more than {MAX_VALUE} characters")


@pass_eval_context
def _bounded_replace(
    eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None
) -> str:
    _spend()
    if _replaced_size(str(s), str(old), str(new), count) > MAX_VALUE:
        raise TooMuchWork(f"replace would produce more than {MAX_VALUE} characters")
    return _checked(do_replace(eval_ctx, s, old, new, count))  # type: ignore[no-any-return]


@pass_eval_context
def _bounded_join(
    eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | int | None = None
) -> str:
    _spend()
    items = list(value) if not isinstance(value, str) else value
    _checked(items)
    if attribute is None:
        _check_join(
            [x if isinstance(x, str) else str(x) for x in items]
            if not isinstance(items, str)
            else list(items),
            d,
        )
    return _checked(do_join(eval_ctx, items, d, attribute))  # type: ignore[no-any-return]


@pass_context  # never folded into a constant at compile time: it must count at render time
def _counted(_context: Any, iterable: Any) -> Any:
    """Wraps the iterable of every ``{% for %}``: each iteration spends a step."""
    for item in iterable:
        _spend()
        yield item


@pass_eval_context
def _bounded_concat(eval_ctx: EvalContext, parts: list[Any]) -> Any:
    """Stands in for every ``~`` concatenation: the parts are measured together before they are
    joined, so neither a long chain nor repeated doubling can outgrow the bounds."""
    _spend()
    _sized(parts, "text joined with '~'")
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


@pass_context
def _sized_filter(_context: Any, value: Any) -> Any:
    """Wraps what ``{{ }}``, ``~`` and every filter receive: it is measured before it is
    turned into text."""
    return _sized(value)


def _wrap(node: nodes.Node, name: str) -> nodes.Expr:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


_INTERNAL_FILTERS = frozenset({"_counted", "_bounded_concat", "_sized"})


class _Bounded(NodeTransformer):
    """Routes loops, ``~``, ``{{ }}`` and filters through the counters and size checks above
    (applied when a template compiles)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _wrap(node.iter, "_counted")
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _wrap(nodes.List(node.nodes, lineno=node.lineno), "_bounded_concat")

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            n if isinstance(n, nodes.TemplateData) else _wrap(n, "_sized") for n in node.nodes
        ]
        return node

    def visit_Filter(self, node: nodes.Filter) -> nodes.Node:
        self.generic_visit(node)
        if node.name not in _INTERNAL_FILTERS and isinstance(node.node, nodes.Expr):
            node.node = _wrap(node.node, "_sized")
        return node


def _power_too_large(base: Any, exponent: Any) -> bool:
    if not isinstance(exponent, (int, float)):
        return False
    if abs(exponent) > 64:
        return True
    return isinstance(base, int) and base.bit_length() * max(int(exponent), 0) > MAX_INT_BITS


class _EmailSandbox(ImmutableSandboxedEnvironment):
    """The sandbox with every operation's output and a render's total work bounded, so neither
    ``{{ 'x' * 10**10 }}``, ``'x'.ljust(999999999)`` nor three nested loops can exhaust memory
    or hang a tick."""

    intercepted_binops = frozenset({"*", "**", "%", "+", "//", "/", "-"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _spend()
        if operator == "**" and _power_too_large(left, right):
            raise TooMuchWork("exponent too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(n, int)
                if sized and len(seq) * n > _MAX_SEQUENCE:
                    raise TooMuchWork(
                        f"repeating with '*' would make a value longer than {_MAX_SEQUENCE}"
                    )
                if sized and _weight(seq) * max(n, 0) > MAX_VALUE:
                    raise TooMuchWork(
                        f"repeating with '*' would make a value longer than {MAX_VALUE} characters"
                    )
        if operator == "+" and _weight(left) + _weight(right) > MAX_VALUE:
            raise TooMuchWork(f"'+' would make a value longer than {MAX_VALUE} characters")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise TooMuchWork("a number grows too large")
        if operator == "%" and isinstance(left, str):
            _check_percent_format(left)
            specs = len(_PERCENT_SPEC.findall(left))
            if specs * _weight(right) + len(left) > MAX_VALUE:
                raise TooMuchWork(f"'%' would make a value longer than {MAX_VALUE} characters")
        return _checked(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        target = getattr(__obj, "__wrapped__", __obj)  # str.format arrives wrapped by Jinja
        owner = getattr(target, "__self__", None)
        for value in (*args, *kwargs.values()):
            _sized(value, "a value passed to a method")
        if isinstance(owner, str):
            _check_str_call(getattr(target, "__name__", ""), owner, args, kwargs)
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        return super()._generate(_Bounded().visit(source), name, filename, defer_init)


def _sandbox() -> ImmutableSandboxedEnvironment:
    env = _EmailSandbox(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    # Staff templates may never mark text as safe HTML or reach attributes by name.
    for name in list(env.filters):
        if name not in ALLOWED_FILTERS:
            del env.filters[name]
    env.filters["replace"] = _bounded_replace
    env.filters["join"] = _bounded_join
    # Internal: inserted by _Bounded, never written by staff (names with "_" are refused).
    env.filters["_counted"] = _counted
    env.filters["_bounded_concat"] = _bounded_concat
    env.filters["_sized"] = _sized_filter
    env.globals.clear()
    return env


# One sandbox for every renderer: it holds no clinic data, only the rules, so a template's
# compiled form can be shared by every renderer in the process.
_SANDBOX = _sandbox()


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    """``source`` compiled in the sandbox, once per process: compiling costs far more than
    rendering, and the same few hundred templates are rendered again and again (every preview,
    every batch, every check of the library). Raises TemplateSyntaxError like ``from_string``."""
    return _SANDBOX.from_string(source)


@lru_cache(maxsize=1024)
def _check_once(
    clinic: ClinicInfo, content: Content, allowed: frozenset[str]
) -> tuple[tuple[str, int | None, str | None], ...]:
    """What :meth:`Renderer.check` finds, once per process for the same clinic, content and
    variables: checking renders the email in full, and a process checks the same templates
    again and again (every command loads the library; every preview checks the draft).
    ``content`` comes without its name (where it was read from: nothing found depends on it),
    so the same text read from the library folder and from the database is checked once.
    Problems are kept as values, so each caller gets exceptions of its own."""
    try:
        Renderer(clinic)._check(content, allowed)
    except TemplateProblem as exc:
        return tuple((p.message, p.line, p.part) for p in exc.all)
    return ()


# The clinic's layouts (files in this package), loaded once per process.
_LAYOUT_FILES = Environment(
    loader=FileSystemLoader(LAYOUTS),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    auto_reload=False,
)


def _first_line(ast: nodes.Template, match: Callable[[nodes.Node], bool]) -> int | None:
    for node in ast.find_all(nodes.Node):
        if match(node):
            return int(node.lineno)
    return None


def _static_problems(
    ast: nodes.Template, label: str, allowed: frozenset[str], fields: dict[str, frozenset[str]]
) -> list[TemplateProblem]:
    """Everything the sandbox would only catch at render time, each with the line it is on."""
    found: list[TemplateProblem] = []
    internals_on: set[int] = set()  # one "internals" problem per line: a chain is one mistake
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value if isinstance(node.arg.value, str) else None
        if name is not None and name.startswith("_"):
            if node.lineno in internals_on:
                continue
            internals_on.add(node.lineno)
            found.append(
                TemplateProblem(
                    f"{label}: '{name}' reaches into Python internals, which email templates may "
                    "not do; use only the variables listed in the authoring guide",
                    node.lineno,
                    part=label,
                )
            )
        elif (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and node.node.name in fields
            and node.attr not in fields[node.node.name]
        ):
            known = ", ".join(f"{node.node.name}.{f}" for f in sorted(fields[node.node.name]))
            found.append(
                TemplateProblem(
                    f"{label}: unknown variable '{node.node.name}.{node.attr}' (allowed: {known})",
                    node.lineno,
                    part=label,
                )
            )
    tags: dict[type[nodes.Node], str] = {
        nodes.Include: "include",
        nodes.Import: "import",
        nodes.FromImport: "from … import",
        nodes.Extends: "extends",
    }
    for other in ast.find_all(tuple(tags)):
        found.append(
            TemplateProblem(
                f"{label}: '{{% {tags[type(other)]} %}}' is not available in email templates: "
                "every email is one self-contained template (the layout and footer are added "
                "for you)",
                other.lineno,
                part=label,
            )
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
            found.append(TemplateProblem(f"{label}: {why}", node.lineno, part=label))
    if found:  # names are looked up by compiling, which an unknown filter stops
        return sorted(found, key=lambda p: p.line or 0)
    unknown = sorted(meta.find_undeclared_variables(ast) - allowed)
    if unknown:
        first = unknown[0]
        line = _first_line(ast, lambda n: isinstance(n, nodes.Name) and n.name == first)
        names = ", ".join(f"'{u}'" for u in unknown)
        found.append(
            TemplateProblem(
                f"{label}: unknown variable {names} (allowed variables: {', '.join(sorted(allowed))})",
                line,
                part=label,
            )
        )
    return sorted(found, key=lambda p: p.line or 0)


class Renderer:
    """Renders staff content inside the clinic's layout. Thread-safe after construction."""

    def __init__(self, clinic: ClinicInfo) -> None:
        self.clinic = clinic
        self.sandbox = _SANDBOX
        self.markdown = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(
            ["replacements", "smartquotes"]
        )
        # Only for validation: finds raw HTML that the rendering parser would show as text.
        self._html_aware = MarkdownIt("commonmark", {"html": True})
        self.layouts = _LAYOUT_FILES
        self.inliner = css_inline.CSSInliner(keep_style_tags=True)

    def use_clinic(self, clinic: ClinicInfo) -> None:
        """Render with ``clinic`` from now on (staff changed the clinic's settings)."""
        self.clinic = clinic
        self.__dict__.pop("_warning_signs", None)  # built from the clinic's care lines

    @cached_property
    def _warning_signs(self) -> dict[str, str]:
        return warning_signs.template_variable(self.clinic.care_lines())

    @cached_property
    def _text_config(self) -> ParserConfig:
        return ParserConfig(display_links=True, display_images=True)

    # -- validation -------------------------------------------------------------------------
    def check(self, content: Content, allowed: frozenset[str]) -> None:
        """Raise :class:`TemplateProblem` if the content would fail or escape the sandbox.

        ``line`` on the problem is 1-based within the part named by ``part`` (subject,
        preheader or body). A pass is remembered (:mod:`templates.check_memory`): the same
        check by the same code is not made again.
        """
        anonymous = replace(content, name="")
        key = check_memory.digest(self.clinic, anonymous, sorted(allowed))
        if key in check_memory.memory:
            return
        found = _check_once(self.clinic, anonymous, allowed)
        if found:
            raise TemplateProblem.of(
                [TemplateProblem(m, line, part=part) for m, line, part in found]
            )
        check_memory.memory.passed(key, check_memory.clinic_scope(self.clinic))

    def _check(self, content: Content, allowed: frozenset[str]) -> None:
        fields = {"clinic": frozenset(self.clinic.as_context())} if "clinic" in allowed else {}
        if WARNING_SIGNS in allowed:
            fields[WARNING_SIGNS] = warning_signs.TEMPLATE_FIELDS
        found: list[TemplateProblem] = []
        for label, source in (
            ("subject", content.subject),
            ("preheader", content.preheader),
            ("body", content.body),
        ):
            try:
                ast = self.sandbox.parse(source)
            except TemplateSyntaxError as exc:
                found.append(
                    TemplateProblem(
                        f"{label}: template syntax: {exc.message}", exc.lineno, part=label
                    )
                )
                continue
            static = _static_problems(ast, label, allowed, fields)
            found += static
            if static:
                continue
            try:
                _compiled(source)
            except TemplateSyntaxError as exc:
                found.append(TemplateProblem(f"{label}: {exc.message}", exc.lineno, part=label))
        found += self._markdown_problems(content.body)
        if found:
            raise TemplateProblem.of(found)
        # Allowed variables the caller fills per recipient (e.g. record_url) render as tokens.
        extra = {
            n: html_token(n)
            for n in allowed
            if n not in ("clinic", WARNING_SIGNS) and n not in PLACEHOLDER_FIELDS
        }
        self.render(content, reason="(validation)", list_name="validation", extra=extra)

    def _markdown_problems(self, body: str) -> list[TemplateProblem]:
        """No raw HTML (it would show as text), and every image has alt text: many clients block
        images, and screen readers read the alt text aloud."""
        found: list[TemplateProblem] = []
        for token in self._html_aware.parse(body):
            line = token.map[0] + 1 if token.map else None
            if token.type == "html_block" or any(
                c.type == "html_inline" for c in token.children or ()
            ):
                found.append(
                    TemplateProblem(
                        "body: raw HTML is not allowed in an email body (it would show as text); "
                        "write Markdown instead, like **bold** or [a link](https://…)",
                        line,
                        part="body",
                    )
                )
            for child in token.children or ():
                if child.type == "image" and not child.content.strip():
                    found.append(
                        TemplateProblem(
                            "body: an image has no alt text; write what it shows between the "
                            "brackets, like ![A person sitting upright at a desk](https://…)",
                            line,
                            part="body",
                        )
                    )
        return found

    # -- rendering --------------------------------------------------------------------------
    def _context(self, extra: dict[str, Any] | None) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "clinic": self.clinic.as_context(),
            WARNING_SIGNS: self._warning_signs,
        }
        for name in PLACEHOLDER_FIELDS:
            ctx[name] = html_token(name)
        if extra:
            ctx.update(extra)
        return ctx

    def _sandboxed(self, source: str, ctx: dict[str, Any], label: str) -> str:
        token = _BUDGET.set(_Budget(MAX_STEPS))
        try:
            out = self._bounded_render(source, ctx, label)
        except (RecursionError, MemoryError) as exc:
            why = (
                "the template calls itself too deeply (recursion)"
                if isinstance(exc, RecursionError)
                else "the template needs too much memory"
            )
            raise TemplateProblem(f"{label}: {why}", _template_line(exc), part=label) from None
        except ArithmeticError as exc:
            raise TemplateProblem(
                f"{label}: arithmetic error ({exc})", _template_line(exc), part=label
            ) from None
        except TooMuchWork as exc:
            raise TemplateProblem(f"{label}: {exc}", _template_line(exc), part=label) from None
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
        except TemplateProblem:
            raise
        except (TypeError, ValueError, LookupError, AttributeError) as exc:
            raise TemplateProblem(
                f"{label}: {_plain_error(exc)}", _template_line(exc), part=label
            ) from None
        finally:
            _BUDGET.reset(token)
        return out

    def _bounded_render(self, source: str, ctx: dict[str, Any], label: str) -> str:
        """Render piece by piece, stopping as soon as the output passes :data:`MAX_OUTPUT`."""
        parts: list[str] = []
        size = 0
        for piece in _compiled(source).generate(ctx):
            size += len(piece)
            if size > MAX_OUTPUT:
                raise TemplateProblem(
                    f"{label}: renders to more than {MAX_OUTPUT} characters", part=label
                )
            parts.append(piece)
        return "".join(parts)

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


def _plain_error(exc: BaseException) -> str:
    """What a Python error inside a template means, in words staff can act on."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, TypeError):
        return f"values of the wrong kind are combined here ({detail})"
    if isinstance(exc, IndexError):
        return f"something is asked for by position that is not there ({detail})"
    if isinstance(exc, KeyError):
        return f"something is asked for by a name that is not there ({detail})"
    if isinstance(exc, AttributeError):
        return f"this value has no such field or method ({detail})"
    return f"a value cannot be used here ({detail})"


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
