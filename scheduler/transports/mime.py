"""Build a complete MIME message for one recipient (used by the outbox and SMTP transports)."""

from __future__ import annotations

from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from scheduler.transports.base import Batch, Envelope
from templates import fill

# Long header values such as List-Unsubscribe must stay one plain line: the default 78-column
# policy would RFC 2047-encode a long URL, which mail clients then cannot use.
POLICY = policy.SMTP.clone(max_line_length=998)


def build_message(batch: Batch, env: Envelope) -> EmailMessage:
    subject, html_part, text_part = fill(batch.rendered, env.values)
    msg = EmailMessage(policy=POLICY)
    domain = batch.from_email.rsplit("@", 1)[-1]
    msg["From"] = Address(display_name=batch.from_name, addr_spec=batch.from_email)
    msg["To"] = env.to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=env.send_id, domain=domain)
    for name, value in {**batch.headers, **env.headers}.items():
        msg[name] = value
    msg["X-Clinicmail-Send-Id"] = env.send_id
    msg.set_content(text_part)
    msg.add_alternative(html_part, subtype="html")
    return msg
