"""A one-off newsletter with a neck variant, as staff would write it for `campaigns broadcast`."""

from __future__ import annotations

from pathlib import Path

NEWS = """---
subject: "Holiday opening hours"
preheader: "When we are open over the holidays."
variants:
  - id: neck
    when: {has: neck}
    file: news.neck.md
---
Hi {{ first_name }},

We are open over the holidays. [Book a visit]({{ clinic.booking_url }}).
"""


NEWS_NECK = """---
subject: "Holiday hours, and a tip for your neck"
---
Hi {{ first_name }},

We are open over the holidays. Take a short walk each day.
"""


def news_files(tmp_path: Path) -> Path:
    """The newsletter and its neck variant written to ``tmp_path``; the newsletter's path."""
    (tmp_path / "news.md").write_text(NEWS, encoding="utf-8")
    (tmp_path / "news.neck.md").write_text(NEWS_NECK, encoding="utf-8")
    return tmp_path / "news.md"
