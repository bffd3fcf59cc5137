"""Every answer carries the security headers, no page runs inline script, and the API docs load
nothing from another origin."""

from __future__ import annotations

import re

from tests.support.cli import CLI
from tests.support.console import make_console

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)


def test_headers_on_every_kind_of_answer_and_no_inline_script(sqlite_cli: CLI) -> None:
    console = make_console(sqlite_cli, base_url="https://mail.clinic.example")
    try:
        public = console.client(base_url="https://mail.clinic.example")
        staff = console.client(base_url="https://mail.clinic.example")  # Secure cookies
        assert console.sign_in(staff, "ops").status_code == 303
        answers = {
            "/": public.get("/"),
            "/healthz": public.get("/healthz"),
            "/signup": public.get("/signup"),
            "/admin/login": public.get("/admin/login"),
            "/admin (no session)": public.get("/admin"),
            "/nowhere": public.get("/nowhere"),
            "/admin": staff.get("/admin"),
            "/admin/ops": staff.get("/admin/ops"),
            "/admin/campaigns": staff.get("/admin/campaigns"),
            "/docs": staff.get("/docs"),
            "/openapi.json": staff.get("/openapi.json"),
        }
        for where, answer in answers.items():
            h = answer.headers
            csp = h.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "'unsafe-eval'" not in csp, where
            assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, where
            assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0], where
            assert h.get("x-content-type-options") == "nosniff", where
            assert h.get("referrer-policy") in ("same-origin", "no-referrer"), where
            assert h.get("x-frame-options") == "DENY", where
            assert h.get("strict-transport-security", "").startswith("max-age="), where
            if "text/html" in h.get("content-type", ""):
                assert not INLINE_SCRIPT.search(answer.text), (where, answer.text[:500])
        docs = answers["/docs"].text
        assert "cdn" not in docs.lower() and "http" not in docs.split("<body>")[1]
        for asset in re.findall(r'(?:src|href)="(/admin/static/[^"]+)"', docs):
            served = staff.get(asset)
            assert served.status_code == 200, asset
            assert served.headers["x-content-type-options"] == "nosniff"
        assert len(staff.get("/admin/static/swagger-ui-bundle.js").content) > 100_000
        assert staff.get("/redoc").headers["location"] == "/docs"
        assert public.get("/assets/signup.js").headers["content-type"].startswith("text/javascript")
    finally:
        console.ctx.close()


def test_no_hsts_over_plain_http(sqlite_cli: CLI) -> None:
    console = make_console(sqlite_cli, base_url="http://127.0.0.1:8000")
    try:
        answer = console.client().get("/healthz")
        assert "strict-transport-security" not in answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"
    finally:
        console.ctx.close()
