"""Own open and click tracking, the template half: rewrite a rendered email's outbound links to
per-recipient tokens and add the open pixel, once per (step, variant).

Only ``<a href="http(s)://…">`` links are rewritten: our own per-recipient links (unsubscribe,
preferences, confirmation, check-in) are still ``@@tokens@@`` at this point and stay as they are,
and ``mailto:``/``tel:`` links and images are never touched. Each distinct URL gets one position,
in order of first appearance; its token is ``link_{position}`` in both parts, so the caller
stores ``links[position]`` once and fills each recipient's signed redirect URL. The open pixel's
token is ``open_url``. Nothing here knows how URLs are stored or signed.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace

from templates.render import Rendered, html_token, text_token

OPEN_FIELD = "open_url"
_HREF = re.compile(r'(<a\b[^>]*?\shref=")([^"]*)(")', re.IGNORECASE)
_TRACKABLE = re.compile(r"^https?://", re.IGNORECASE)
# A 1x1 image, hidden from screen readers (empty alt text) and from layout.
PIXEL = (
    f'<img src="{html_token(OPEN_FIELD)}" width="1" height="1" alt="" aria-hidden="true" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0;overflow:hidden;">'
)


def link_token(position: int) -> str:
    return f"link_{position}"


@dataclass(frozen=True)
class Tracked:
    """The rewritten email and the original URLs, ``links[i]`` behind token ``link_i``."""

    rendered: Rendered
    links: tuple[str, ...]


def track(rendered: Rendered, *, pixel: bool = True) -> Tracked:
    """Rewrite ``rendered``'s outbound links to ``link_N`` tokens (and add the open pixel)."""
    positions: dict[str, int] = {}

    def rewrite(m: re.Match[str]) -> str:
        url = html.unescape(m.group(2)).strip()
        if not _TRACKABLE.match(url):
            return m.group(0)
        position = positions.setdefault(url, len(positions))
        return f"{m.group(1)}{html_token(link_token(position))}{m.group(3)}"

    page = _HREF.sub(rewrite, rendered.html)
    if pixel:
        at = page.lower().rfind("</body>")
        page = page[:at] + PIXEL + page[at:] if at >= 0 else page + PIXEL
    text = rendered.text
    # The text part shows each link as "[label](url)": rewrite the target, never the label.
    # Longest first, so a URL that is a prefix of another cannot swallow part of it.
    for url in sorted(positions, key=len, reverse=True):
        text = text.replace(f"]({url})", f"]({text_token(link_token(positions[url]))})")
    extra = {link_token(p) for p in positions.values()} | ({OPEN_FIELD} if pixel else set())
    return Tracked(
        rendered=replace(rendered, html=page, text=text, fields=rendered.fields | extra),
        links=tuple(positions),
    )
