"""The bounce mailbox (``CLINICMAIL_BOUNCE_MAILBOX``): an IMAP folder read over TLS.

A message is read once: after it has been dealt with it gets the IMAP keyword
:data:`DONE` (``$ClinicmailDone``), and only messages without it are fetched. Messages are
fetched with ``BODY.PEEK[]``, so ``\\Seen`` is left alone: a person who shares the mailbox still
sees a new reply as unread. A server that does not allow keywords on the folder gets ``\\Seen``
instead (and only unseen messages are read).
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from core.errors import Unavailable

DONE = "$ClinicmailDone"
SHAPE = "must look like imaps://user:pass@host:993/INBOX"


class MailboxError(Unavailable, RuntimeError):
    """The mailbox cannot be read; the message names what to check (never the password)."""


@dataclass(frozen=True)
class MailboxURL:
    host: str
    port: int
    user: str
    password: str
    folder: str

    @classmethod
    def parse(cls, url: str) -> MailboxURL:
        """Raises ValueError naming what is wrong (the value is never repeated)."""
        parts = urlsplit(url)
        if parts.scheme != "imaps" or not parts.hostname:
            raise ValueError(SHAPE + " (only imaps://: the password never crosses in clear)")
        if not parts.username or parts.password is None:
            raise ValueError(SHAPE + " (the user and password are missing)")
        try:
            port = parts.port or 993
        except ValueError:
            raise ValueError("has an invalid port") from None
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        if any(ord(c) < 32 for c in folder) or '"' in folder:
            raise ValueError("names a folder with a control character or a quote")
        return cls(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username),
            password=unquote(parts.password),
            folder=folder,
        )

    @property
    def shown(self) -> str:
        """Where it is, without the credentials: for log lines and the doctor."""
        return f"imaps://{self.host}:{self.port}/{self.folder}"


_UIDS = re.compile(rb"UID (\d+)")


class Mailbox:
    """One IMAP session on the folder (a context manager)."""

    def __init__(self, url: MailboxURL, *, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._imap: imaplib.IMAP4_SSL | None = None
        self._flag = DONE

    def __enter__(self) -> Mailbox:
        u = self.url
        try:
            # The default context verifies the certificate and the host name (tests trust their
            # own authority through SSL_CERT_FILE, which OpenSSL reads).
            imap = imaplib.IMAP4_SSL(
                u.host, u.port, ssl_context=ssl.create_default_context(), timeout=self.timeout
            )
        except ssl.SSLError as exc:
            raise MailboxError(
                f"TLS with the bounce mailbox {u.shown} failed ({exc.reason or 'SSL error'}): "
                "check the host and its certificate in CLINICMAIL_BOUNCE_MAILBOX"
            ) from None
        except OSError as exc:
            raise MailboxError(
                f"the bounce mailbox {u.shown} cannot be reached ({type(exc).__name__}): "
                "check the host and port in CLINICMAIL_BOUNCE_MAILBOX"
            ) from None
        self._imap = imap
        try:
            try:
                imap.login(u.user, u.password)
            except imaplib.IMAP4.error:
                raise MailboxError(
                    f"the bounce mailbox {u.shown} refused the login: check the user and "
                    "password in CLINICMAIL_BOUNCE_MAILBOX"
                ) from None
            status, _ = imap.select(_quoted(u.folder))
            if status != "OK":
                raise MailboxError(
                    f"the bounce mailbox has no folder {u.folder!r}: check the folder at the end "
                    "of CLINICMAIL_BOUNCE_MAILBOX"
                )
            _, flags = imap.response("PERMANENTFLAGS")
            allowed = b" ".join(f for f in flags if isinstance(f, bytes))
            if b"\\*" not in allowed and DONE.encode() not in allowed:
                self._flag = "\\Seen"
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        try:
            if imap.state == "SELECTED":
                imap.close()
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass

    @property
    def imap(self) -> imaplib.IMAP4_SSL:
        assert self._imap is not None, "use the mailbox as a context manager"
        return self._imap

    def unread(self, limit: int) -> list[int]:
        """UIDs of up to ``limit`` messages not dealt with yet, oldest first."""
        if self._flag == DONE:
            status, data = self.imap.uid("SEARCH", "UNKEYWORD", DONE)
        else:
            status, data = self.imap.uid("SEARCH", "UNSEEN")
        if status != "OK":
            raise MailboxError(f"the bounce mailbox {self.url.shown} refused the search")
        uids = [int(u) for u in b" ".join(d for d in data if isinstance(d, bytes)).split()]
        return sorted(uids)[:limit]

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        """Each message's raw bytes, without marking it ``\\Seen``."""
        for uid in uids:
            status, data = self.imap.uid("FETCH", str(uid), "(UID BODY.PEEK[])")
            if status != "OK":
                raise MailboxError(f"the bounce mailbox {self.url.shown} refused a fetch")
            for item in data:
                if isinstance(item, tuple) and _UIDS.search(item[0]):
                    yield uid, item[1]
                    break

    def done(self, uid: int) -> None:
        """Mark one message as dealt with, so it is never read again."""
        status, _ = self.imap.uid("STORE", str(uid), "+FLAGS.SILENT", f"({self._flag})")
        if status != "OK":
            raise MailboxError(f"the bounce mailbox {self.url.shown} refused to flag a message")


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\") + '"'
