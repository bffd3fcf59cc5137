"""What the composition root hands the console's operating pages (people, dashboard, outbox,
ops): callables over code the console may not import (the scheduler's ledger, its planner, its
transports and settings), so every figure and every action comes from the one place the CLI
uses too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from staff.accounts import StaffUser
from subscribers.changes import AfterSymptoms
from subscribers.privacy import Erasure

JsonDict = dict[str, Any]


def _no_banner() -> str | None:
    return None


@dataclass(frozen=True)
class Services:
    # ``clinicmail subscribers export EMAIL``'s JSON, or None when nobody has the address.
    export_json: Callable[[str], str | None]
    # ``clinicmail subscribers erase EMAIL``: every table, then scrubbed on disk; the audit
    # entry (``subscriber.erase`` under the staff member) is written in the erasure's own
    # transaction, so there is never an erasure without its entry or an entry without it.
    erase: Callable[[str, datetime, StaffUser], Erasure]
    # What comes next for a person (subscriber row id): the planner's own decision, as dicts
    # with campaign_id, step_id, variant_id, at (ISO 8601 or None) and why.
    upcoming: Callable[[int, datetime], list[JsonDict]]
    # After staff changed a confirmed person's symptoms: enrol them in what the codes select
    # (on the change's own connection).
    enrol: AfterSymptoms
    # ``clinicmail stats --json``'s document.
    stats: Callable[[datetime], JsonDict]
    # Delivery health: backlog, last send, transport back-off.
    delivery: Callable[[datetime], JsonDict]
    # The effective settings, secrets redacted, as (name, value) pairs.
    settings: Callable[[], list[tuple[str, str]]]
    # Send a test email to an address through the configured transport; returns what happened.
    test_email: Callable[[str], str]
    # Campaign ids and names, for labels and the newsletter form.
    campaign_names: Callable[[], dict[str, str]]
    # The outbox transport's stored messages, newest first: id, recipient, subject, created_at;
    # (limit, before): at most ``limit``, only those with an id below ``before`` when given.
    outbox_list: Callable[[int, int | None], list[JsonDict]]
    # One stored message: the same fields and ``message`` (the raw MIME bytes); None if gone.
    outbox_message: Callable[[int], JsonDict | None]
    # ``campaigns broadcast`` (and its ``--dry-run``): slug, file name, {file: text}, segment
    # rule data, local wall time, dry run. Raises ValueError (with ``details``) when refused.
    broadcast: Callable[[str, str, dict[str, str], Any, datetime, bool, bool], JsonDict]
    # API keys for the clinic's other systems (``clinicmail apikeys``): every key as a dict
    # (name, prefix, scopes, created_at, last_used_at, revoked_at); create (name, comma-separated
    # scopes, who) → the key, shown once; revoke (name, who). Both raise ``ValueError`` with a
    # message for the page, and are audited under the staff member.
    api_keys: Callable[[], list[JsonDict]] = lambda: []
    # Add or update one person as an import row (fields: email, first_name, timezone,
    # symptoms as "a;b", consent, source) under the acting staff member, audited in the same
    # transaction → (public id, new?); raises ValueError with the reason when refused.
    save_person: Callable[[dict[str, str], StaffUser], tuple[str, bool]] | None = None
    # The outbox message each of a person's sends was stored as (subscriber row id →
    # {send_id: outbox message id}); empty when the outbox transport stored none.
    outbox_of: Callable[[int], dict[str, int]] = lambda _sid: {}
    create_api_key: Callable[[str, str, StaffUser], str] | None = None
    revoke_api_key: Callable[[str, StaffUser], None] | None = None
    # What stops delivery for everyone (the provider refuses the account or configuration),
    # shown as a banner on every console page; None while email goes out.
    banner: Callable[[], str | None] = _no_banner
    # The operator's levers over the send ledger (``clinicmail sends …``, ``transport reset``):
    # each takes the acting staff member for the audit log and returns a short outcome; a
    # refused request raises ValueError with the reason.
    sends_list: Callable[[str], list[JsonDict]] | None = None
    sends_retry: Callable[[list[int], StaffUser], str] | None = None
    sends_resolve: Callable[[int, bool, StaffUser], str] | None = None
    transport_reset: Callable[[StaffUser], str] | None = None
    # One email set aside for refused content: (campaign, step, variant, actor).
    set_aside_release: Callable[[str, str, str, StaffUser], str] | None = None
