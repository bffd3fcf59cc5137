"""Properties of the MIME builder over any content: whatever the text and HTML (very long
lines, any Unicode, lines that look like boundaries or "From "), the message keeps the line
rules and each part decodes back to exactly what was rendered."""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from deliverability.lookup import parse_server
from deliverability.message import message_problems
from templates import Rendered
from transports.base import Batch, Envelope
from transports.mime import build_message

# Lines of any length (past the 998 limit once UTF-8 and quoted-printable expand them) from all of Unicode except the line
# breaks and surrogates that no rendered email contains.
LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
    max_size=1200,
)
BODY = st.lists(LINE, min_size=1, max_size=6).map("\n".join)
UNSUBSCRIBE = "<https://mail.clinic.example/unsubscribe/" + "t" * 400 + ">"


def _message(html: str, text: str, subject: str) -> bytes:
    batch = Batch(
        rendered=Rendered(subject=subject, html=html, text=text),
        from_email="care@clinic.example",
        from_name="Clinic – Rücken & Nacken",
        category="c",
        custom_args={},
        headers={
            "List-Id": "c <c.clinic.example>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        recipients=[],
    )
    env = Envelope("0123abcd", "ann@example.com", 1, {}, {"List-Unsubscribe": UNSUBSCRIBE})
    return build_message(batch, env).as_bytes()


@settings(max_examples=25, deadline=None)
@given(html=BODY, text=BODY, subject=LINE.filter(lambda s: s.strip() != ""))
def test_any_content_keeps_the_line_rules_and_decodes_unchanged(
    html: str, text: str, subject: str
) -> None:
    raw = _message(html, text, subject)
    assert message_problems(raw, from_domain="clinic.example", list_mail=True) == []
    msg = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(msg, EmailMessage)
    parts = {p.get_content_type(): p for p in msg.iter_parts()}
    for kind, sent in (("text/plain", text), ("text/html", html)):
        # The parser keeps the wire's CRLF in 7bit parts; set_content ends a part with a newline.
        got = parts[kind].get_content().replace("\r\n", "\n")
        assert got.rstrip("\n") == sent.rstrip("\n")
        assert parts[kind]["Content-Transfer-Encoding"] in ("7bit", "quoted-printable", "base64")


def test_a_long_html_line_is_quoted_printable_at_76() -> None:
    raw = _message("<p>" + "word " * 600 + "</p>", "plain", "Hello")
    html = raw.split(b"Content-Type: text/html", 1)[1]
    assert b"Content-Transfer-Encoding: quoted-printable" in html
    body_lines = html.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) == 76  # wrapped, and wrapped at exactly 76
    assert raw.count(b"MIME-Version:") == 1
    (unsubscribe,) = [line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:")]
    assert unsubscribe == b"List-Unsubscribe: " + UNSUBSCRIBE.encode()  # one line, unfolded


def test_dns_server_addresses() -> None:
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("9.9.9.9") == ("9.9.9.9", 53)
    assert parse_server("[::1]:5300") == ("::1", 5300)
    assert parse_server("::1") == ("::1", 53)
    for bad in ("127.0.0.1:dns", "127.0.0.1:0", ":53", "127.0.0.1:70000"):
        try:
            parse_server(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
