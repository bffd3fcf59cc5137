"""Build a complete MIME message for one recipient (used by the outbox and SMTP transports).

Two line-length rules apply (RFC 5322 §2.1.1, RFC 2045 §6.7):

- headers may run to 998 characters, which keeps ``List-Unsubscribe`` one plain line (the
  default 78-column policy would fold or RFC 2047-encode a long URL, which mail clients and
  one-click unsubscribe (RFC 8058) then cannot use);
- body parts are encoded with the standard 76-character limit, so quoted-printable and base64
  lines wrap at 76 and a long HTML line never produces an over-long encoded line.

Only the top-level message carries ``MIME-Version``; the text and HTML parts are plain
:class:`~email.message.MIMEPart` objects without one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, make_msgid

from templates import fill
from transports.base import Batch, Envelope

HEADER_POLICY = policy.SMTP.clone(max_line_length=998)
# 7bit: non-ASCII text is quoted-printable or base64, so no relay needs 8BITMIME.
BODY_POLICY = policy.SMTP.clone(max_line_length=76, cte_type="7bit")


def _part(content: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=BODY_POLICY)
    part.set_content(content, subtype=subtype)
    return part


def build_message(batch: Batch, env: Envelope) -> EmailMessage:
    subject, html_part, text_part = fill(batch.rendered, env.values)
    msg = EmailMessage(policy=HEADER_POLICY)
    domain = batch.from_email.rsplit("@", 1)[-1]
    msg["From"] = Address(display_name=batch.from_name, addr_spec=batch.from_email)
    msg["To"] = env.to
    msg["Subject"] = subject
    # "+0000", not formatdate()'s "-0000", which RFC 5322 §3.3 reserves for "zone unknown".
    msg["Date"] = format_datetime(datetime.now(UTC).replace(microsecond=0))
    msg["Message-ID"] = make_msgid(idstring=env.send_id, domain=domain)
    for name, value in {**batch.headers, **env.headers}.items():
        msg[name] = value
    msg["X-Clinicmail-Send-Id"] = env.send_id
    msg["MIME-Version"] = "1.0"
    msg.make_alternative()
    msg.set_payload([_part(text_part, "plain"), _part(html_part, "html")])
    return msg
