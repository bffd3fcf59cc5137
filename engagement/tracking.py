"""Own open and click tracking for the ``smtp`` and ``outbox`` transports, and the signed links
of one-click check-ins. (SendGrid keeps its own open events through the Event Webhook, and its
click tracking stays off so health-topic URLs never leave the clinic's domain.)

How a tracked email is built (once per (step, variant), then per recipient):

1. :func:`templates.tracking.track` rewrites the rendered email's outbound ``http(s)`` links to
   tokens ``link_0``, ``link_1`` … and adds an open pixel (token ``open_url``);
2. :meth:`EngagementLinks.prepare` stores each distinct URL once in
   :data:`engagement.tables.tracked_links`;
3. :meth:`EngagementLinks.values` gives each recipient ``{BASE_URL}/r/{link_id}/{signature}``
   per link and ``{BASE_URL}/o/{send_id}/{signature}.gif`` for the pixel, where ``link_id`` is
   ``{send_id}-{tracked link id}``: opaque ids only, never an address, a name or a symptom.

Signatures are HMAC-SHA256 (itsdangerous), one salt per purpose (``open``, ``click``,
``checkin``), over the id in the URL; several keys verify, the newest signs (key rotation): the
signed ids of :class:`subscribers.tokens.Tokens`. A redirect goes only to the stored URL its
link id names, and only when the send it names is an email of that very (campaign, step,
variant): a tampered, unsigned or unknown link is a 404 and records nothing, so there is no
open redirect.

Hits become rows of ``engagement.tables.email_events`` (provider ``clinicmail``) and are applied
by :func:`engagement.process.apply_pending` like SendGrid's, so they reach ``clinicmail stats``
and the subscriber's activity facts. Obvious machines are stored with ``machine=True`` (see
:func:`machine_reason`) and never counted as a person's engagement.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from campaigns.ledger_reads import campaign_recipient, link_recipient
from engagement.events import Event, Kind
from engagement.ingest import store
from engagement.tables import tracked_links
from storage import Database, utcnow
from storage.sql import dialect_insert
from subscribers.tokens import Tokens
from templates import Rendered
from templates.checkin import URL_FIELD as CHECKIN_FIELD
from templates.tracking import OPEN_FIELD, link_token, track

log = logging.getLogger("clinicmail.tracking")

PROVIDER = "clinicmail"


# -- building links (the dispatcher's side) ------------------------------------------------------
def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def store_links(
    conn: Connection,
    campaign_id: str,
    step_id: str,
    variant_id: str,
    urls: Sequence[str],
    now: datetime,
) -> tuple[int, ...]:
    """Store each URL once (idempotent across processes); return their row ids in order."""
    if not urls:
        return ()
    rows = [
        {
            "campaign_id": campaign_id,
            "step_id": step_id,
            "variant_id": variant_id,
            "position": position,
            "url_hash": url_hash(url),
            "url": url,
            "created_at": now,
        }
        for position, url in enumerate(urls)
    ]
    conn.execute(dialect_insert(conn, tracked_links).on_conflict_do_nothing(), rows)
    t = tracked_links
    found = {
        (r.position, r.url_hash): r.id
        for r in conn.execute(
            select(t.c.id, t.c.position, t.c.url_hash).where(
                t.c.campaign_id == campaign_id,
                t.c.step_id == step_id,
                t.c.variant_id == variant_id,
                t.c.position < len(urls),
            )
        )
    }
    return tuple(found[(r["position"], r["url_hash"])] for r in rows)


@dataclass
class EngagementLinks:
    """The per-recipient engagement links of campaign email: tracked links and the open pixel
    (when ``tracking`` is on) and the check-in link (whenever a step asks for one).

    Used by one dispatcher at a time (not thread-safe); the composition root builds one per
    dispatcher with ``tracking`` on only for the smtp and outbox transports.
    """

    db: Database
    tokens: Tokens
    base_url: str
    tracking: bool
    _links: dict[tuple[str, str, str], tuple[int, ...]] = field(default_factory=dict)

    def prepare(self, key: tuple[str, str, str], rendered: Rendered) -> Rendered:
        """Rewrite a rendered (campaign, step, variant) for tracking and store its URLs."""
        if not self.tracking:
            return rendered
        tracked = track(rendered)
        try:
            with self.db.begin() as conn:
                self._links[key] = store_links(conn, *key, tracked.links, utcnow())
        except SQLAlchemyError as exc:
            # An email with its plain links beats a failed send: tracking is a nicety.
            log.warning("could not store tracked links, sending untracked: %s", type(exc).__name__)
            return rendered
        return tracked.rendered

    def values(
        self, key: tuple[str, str, str], send_id: str, fields: frozenset[str]
    ) -> dict[str, str]:
        """One recipient's link values for the tokens ``fields`` of the rendered email."""
        base = self.base_url
        out: dict[str, str] = {}
        if CHECKIN_FIELD in fields:
            out[CHECKIN_FIELD] = f"{base}/checkin/{self.tokens.token('checkin', send_id)}"
        if OPEN_FIELD in fields:
            out[OPEN_FIELD] = f"{base}/o/{send_id}/{self.tokens.signature('open', send_id)}.gif"
        for position, row_id in enumerate(self._links.get(key, ())):
            if link_token(position) in fields:
                link_id = f"{send_id}-{row_id}"
                out[link_token(position)] = (
                    f"{base}/r/{link_id}/{self.tokens.signature('click', link_id)}"
                )
        return out


# -- recording hits (the web side) ---------------------------------------------------------------
# Anything this soon after the email left is a mail gateway or a privacy proxy fetching it, not
# a person (either side: the web and sending processes' clocks may differ by a few seconds).
MACHINE_WINDOW = timedelta(seconds=10)
# Link scanners, prefetchers and scripts announce themselves; real mail clients and browsers
# do not match these. (Gmail's image proxy is deliberately absent: it fetches when a person
# opens the email.)
_SCANNER = re.compile(
    r"bot\b|crawler|spider|slurp|scanner|headless|phantomjs|python-|curl/|wget/|"
    r"go-http-client|java/|libwww|okhttp|apache-httpclient|axios/|node-fetch|"
    r"barracuda|mimecast|proofpoint|symantec|messagelabs|trend ?micro|forcepoint|zscaler|"
    r"sophos|fortinet|fortiguard|ironport|safelinks|existence discovery|linkcheck|"
    r"link ?checker|urlscan|virustotal",
    re.IGNORECASE,
)
APPLE_PROXY_AGENT = "mozilla/5.0"


def machine_reason(
    method: str, user_agent: str | None, sent_at: datetime | None, now: datetime
) -> str | None:
    """Why a hit is obviously not a person, or None.

    ``head`` (browsers GET; checkers ask HEAD), ``proxy`` (Apple Mail Privacy Protection's
    prefetch), ``agent`` (no user agent, or a scanner's or script's), ``early`` (within
    :data:`MACHINE_WINDOW` of the email leaving).
    """
    if method.upper() == "HEAD":
        return "head"
    agent = (user_agent or "").strip()
    if agent.lower() == APPLE_PROXY_AGENT:
        return "proxy"
    if not agent or _SCANNER.search(agent):
        return "agent"
    if sent_at is not None and abs(now - sent_at) < MACHINE_WINDOW:
        return "early"
    return None


LINK_ID = re.compile(r"^([0-9A-Za-z]{1,64})-([1-9][0-9]{0,17})$")
SEND_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")


@dataclass(frozen=True)
class Hit:
    """One request on a tracking URL: its method, user agent and time."""

    method: str
    user_agent: str | None
    at: datetime


def _event(
    kind: Kind,
    send_id: str,
    email_key: str,
    url: str | None,
    hit: Hit,
    reason: str | None,
    link: int | None = None,
) -> Event:
    # The event name says what a machine was, so a scanner's fetch and a person's click in the
    # same second are two rows; a person's double-click within one second is one.
    name = ("click" if kind is Kind.CLICKED else "open") + (f":{reason}" if reason else "")
    ts = int(hit.at.timestamp())
    raw: dict[str, object] = {"event": name, "send_id": send_id, "timestamp": ts}
    if link is not None:
        raw["link"] = link
    return Event(
        provider=PROVIDER,
        kind=kind,
        event=name,
        sg_event_id=None,
        sg_message_id=None,
        email_key=email_key,  # kept only as its hash (erasure deletes the events)
        send_id=send_id,
        url=url,
        occurred_at=hit.at,
        timestamp=ts,
        machine=reason is not None,
        raw=raw,
    )


def click_target(
    conn: Connection, link_id: str
) -> tuple[str, str, int, str, datetime | None] | None:
    """(url, send_id, link row id, recipient key, sent_at) for a link id, or None if unknown."""
    m = LINK_ID.match(link_id)
    if m is None:
        return None
    send_id, row_id = m.group(1), int(m.group(2))
    row = link_recipient(conn, tracked_links, row_id, send_id)
    if row is None:
        return None
    return row.url, send_id, row_id, row.email_key, row.sent_at


def record_click(
    conn: Connection, tokens: Tokens, link_id: str, signature: str, hit: Hit, *, record: bool
) -> tuple[str, bool] | None:
    """The URL to redirect to and whether a new event was stored, or None (answer 404)."""
    if not tokens.verify("click", link_id, signature):
        return None
    target = click_target(conn, link_id)
    if target is None:
        return None
    url, send_id, row_id, email_key, sent_at = target
    if not record:
        return url, False
    reason = machine_reason(hit.method, hit.user_agent, sent_at, hit.at)
    stored = store(
        conn, [_event(Kind.CLICKED, send_id, email_key, url, hit, reason, row_id)], hit.at
    )
    return url, stored > 0


def record_open(
    conn: Connection, tokens: Tokens, send_id: str, signature: str, hit: Hit, *, record: bool
) -> bool | None:
    """Whether a new open was stored, or None when the pixel is not ours (answer 404)."""
    if SEND_ID.match(send_id) is None or not tokens.verify("open", send_id, signature):
        return None
    row = campaign_recipient(conn, send_id)
    if row is None:
        return None
    if not record:
        return False
    reason = machine_reason(hit.method, hit.user_agent, row.sent_at, hit.at)
    return store(conn, [_event(Kind.OPENED, send_id, row.email_key, None, hit, reason)], hit.at) > 0


# -- showing a stored email to staff (the outbox viewer) -----------------------------------------
_OPEN_IMG = re.compile(r"<img\b[^>]*?\ssrc=\"(?P<src>[^\"]*)\"[^>]*>", re.IGNORECASE)
_REDIRECT = re.compile(r"(?P<base>https?://[^\s\"'<>()]+?)/r/(?P<link>[^/\s\"'<>()]+)/[\w.-]+")


def untracked(conn: Connection, content: str, base_url: str, *, is_html: bool) -> str:
    """``content`` (an email's HTML or text part as sent) with its tracking taken out, for a
    staff member to look at: the open pixel removed and each tracked link replaced by the URL
    it leads to, so viewing or clicking counts nothing. Only our own ``base_url``'s links are
    touched; one whose link id is unknown becomes ``#``."""
    base = base_url.rstrip("/")

    def pixel(m: re.Match[str]) -> str:
        src = m.group("src")
        ours = src.startswith(base + "/o/") and src.endswith(".gif")
        return "" if ours else m.group(0)

    def link(m: re.Match[str]) -> str:
        if m.group("base") != base:
            return m.group(0)
        target = click_target(conn, m.group("link"))
        url = target[0] if target is not None else "#"
        return escape(url) if is_html else url

    return _REDIRECT.sub(link, _OPEN_IMG.sub(pixel, content))
