"""Bounce messages as relays write them, returning (part of) the message that bounced."""

from __future__ import annotations


def _headers(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[0] + b"\r\n"


def dsn(original: bytes, to: str, *, action: str, status: str) -> bytes:
    """An RFC 3464 delivery status notification, as Postfix writes one, returning the original
    message's headers (text/rfc822-headers)."""
    return (
        b"From: MAILER-DAEMON@relay.example (Mail Delivery System)\r\n"
        b"To: care@clinic.example\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n"
        b"Date: Mon, 23 Nov 2026 10:05:00 +0000\r\n"
        b"Message-ID: <dsn-" + to.encode() + action.encode() + b"@relay.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        b"\r\n--B\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at relay.example.\r\n"
        b"\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; relay.example\r\n\r\n"
        b"Final-Recipient: rfc822; " + to.encode() + b"\r\n"
        b"Original-Recipient: rfc822; " + to.encode() + b"\r\n"
        b"Action: " + action.encode() + b"\r\n"
        b"Status: " + status.encode() + b"\r\n"
        b"Diagnostic-Code: smtp; 550 " + status.encode() + b" mailbox unavailable\r\n"
        b"\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + _headers(original)
        + b"\r\n--B--\r\n"
    )


def qmail_bounce(original: bytes, to: str) -> bytes:
    """A non-standard bounce (qmail's QSBMF) quoting the whole original in its text."""
    return (
        b"From: MAILER-DAEMON@old.example\r\n"
        b"To: care@clinic.example\r\n"
        b"Subject: failure notice\r\n"
        b"Date: Mon, 23 Nov 2026 10:06:00 +0000\r\n"
        b"Message-ID: <qmail-bounce@old.example>\r\n"
        b"\r\n"
        b"Hi. This is the qmail-send program at old.example.\r\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
        b"\r\n"
        b"<" + to.encode() + b">:\r\n"
        b"Sorry, no mailbox here by that name. (#5.1.1)\r\n"
        b"\r\n"
        b"--- Below this line is a copy of the message.\r\n"
        b"\r\n" + original
    )


REPLY = (
    b"From: someone@example.net\r\nTo: care@clinic.example\r\nSubject: thanks\r\n"
    b"Date: Mon, 23 Nov 2026 11:00:00 +0000\r\nMessage-ID: <reply@example.net>\r\n\r\n"
    b"Thank you for the advice.\r\n"
)
