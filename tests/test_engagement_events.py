"""The normalized event model: SendGrid's names map onto our kinds; the raw payload is kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engagement.events import HARD, SENDGRID_KINDS, SOFT, Kind, from_sendgrid


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("processed", Kind.PROCESSED),
        ("delivered", Kind.DELIVERED),
        ("deferred", Kind.DEFERRED),
        ("bounce", Kind.BOUNCED),
        ("dropped", Kind.DROPPED),
        ("open", Kind.OPENED),
        ("click", Kind.CLICKED),
        ("spamreport", Kind.COMPLAINED),
        ("unsubscribe", Kind.UNSUBSCRIBED),
        ("group_unsubscribe", Kind.UNSUBSCRIBED),
        ("group_resubscribe", Kind.RESUBSCRIBED),
        ("something_new", Kind.UNKNOWN),
    ],
)
def test_mapping(name: str, kind: Kind) -> None:
    raw = {"event": name, "email": "A@Example.com", "timestamp": 1763900000}
    e = from_sendgrid(raw)
    assert e.kind is kind and e.event == name
    assert e.raw is raw
    assert e.email_key == "a@example.com"
    assert e.occurred_at == datetime(2025, 11, 23, 12, 13, 20, tzinfo=UTC)


def test_every_contract_event_is_mapped() -> None:
    assert set(SENDGRID_KINDS) >= {
        "bounce",
        "dropped",
        "spamreport",
        "unsubscribe",
        "open",
        "click",
    }


@pytest.mark.parametrize(
    ("bounce_type", "cls"), [("bounce", HARD), ("blocked", SOFT), (None, HARD)]
)
def test_bounce_classes(bounce_type: str | None, cls: str) -> None:
    raw = {"event": "bounce", "email": "a@x.org", "reason": "550 unknown user"}
    if bounce_type:
        raw["type"] = bounce_type
    e = from_sendgrid(raw)
    assert e.bounce_class == cls and e.reason == "550 unknown user"


def test_opens_clicks_and_custom_args() -> None:
    machine = from_sendgrid({"event": "open", "sg_machine_open": True, "send_id": "abc"})
    human = from_sendgrid({"event": "open", "sg_machine_open": False, "send_id": "abc"})
    assert machine.machine and not human.machine
    assert machine.send_id == "abc"
    click = from_sendgrid({"event": "click", "url": "https://clinic.example/x"})
    assert click.url == "https://clinic.example/x"
    dropped = from_sendgrid({"event": "dropped", "reason": "Bounced Address"})
    assert dropped.reason == "Bounced Address"


def test_odd_values_do_not_break_normalization() -> None:
    e = from_sendgrid({"event": ["x"], "email": 5, "timestamp": "soon", "sg_event_id": {"a": 1}})
    assert e.kind is Kind.UNKNOWN and e.timestamp is None and e.sg_event_id is None
    assert len(e.natural_key) == 64


def test_natural_key_never_merges_different_event_ids() -> None:
    base = {"event": "open", "email": "a@x.org", "timestamp": 1, "sg_message_id": "m"}
    a = from_sendgrid({**base, "sg_event_id": "1"})
    b = from_sendgrid({**base, "sg_event_id": "2"})
    assert a.natural_key != b.natural_key
    assert a.natural_key == from_sendgrid({**base, "sg_event_id": "1", "timestamp": 9}).natural_key
    # without an id, what the event says is the key
    c, d = from_sendgrid(base), from_sendgrid({**base, "timestamp": 2})
    assert c.natural_key == from_sendgrid(dict(base)).natural_key != d.natural_key
