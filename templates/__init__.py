"""How an email looks: the sandboxed Jinja2 environment, Markdown, the responsive layout, CSS
inlining, the plain-text part and the compliance footer. Knows nothing about the database."""

from templates.render import (
    PLACEHOLDER_FIELDS,
    ClinicInfo,
    Content,
    Rendered,
    Renderer,
    TemplateProblem,
    fill,
    html_token,
    text_token,
)

__all__ = [
    "PLACEHOLDER_FIELDS",
    "ClinicInfo",
    "Content",
    "Rendered",
    "Renderer",
    "TemplateProblem",
    "fill",
    "html_token",
    "text_token",
]
