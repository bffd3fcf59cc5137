"""Segment rules compiled to SQL select exactly the people `Rule.matches` accepts (a property
test over random people and random rules, on every backend).

Storing a population is what costs; a rule is one query. So each generated population is
checked against several rules (up to 8), and 60 populations (~270 rules) run by default;
CLINICMAIL_TEST_SEGMENT_EXAMPLES=300 runs the larger search."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storage import Database
from subscribers import activity, store
from subscribers.segments import compile_rule, parse_rule
from subscribers.symptoms import BY_CODE, GROUP_IDS
from subscribers.tables import subscribers
from tests.support.backends import sqlite_only
from tests.support.rows import insert_subscriber

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CODES = sorted(BY_CODE)
ZONES = ["Europe/London", "America/New_York"]
TARGETS = ["c1", "c1/01", "c1/02", "c2/01"]
ANSWERS = list(activity.CHECKIN_ANSWERS)

leaf = st.one_of(
    st.builds(lambda c: {"has": c}, st.sampled_from(CODES)),
    st.builds(lambda cs: {"has_any": cs}, st.lists(st.sampled_from(CODES), min_size=1, max_size=3)),
    st.builds(lambda cs: {"has_all": cs}, st.lists(st.sampled_from(CODES), min_size=1, max_size=3)),
    st.builds(lambda g: {"in_group": g}, st.sampled_from(sorted(GROUP_IDS))),
    st.builds(lambda n: {"subscribed_days_gte": n}, st.integers(0, 40)),
    st.builds(lambda z: {"timezone": z}, st.sampled_from(ZONES)),
    st.builds(lambda t: {"clicked": t}, st.sampled_from(TARGETS)),
    st.builds(lambda t: {"opened": t}, st.sampled_from(TARGETS)),
    st.builds(lambda a: {"checkin": a}, st.sampled_from(ANSWERS)),
    st.builds(lambda a: {"checkin_ever": a}, st.sampled_from(ANSWERS)),
)
rules = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda rs: {"all": rs}, st.lists(inner, max_size=3)),
        st.builds(lambda rs: {"any": rs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda r: {"not": r}, inner),
    ),
    max_leaves=8,
)
people = st.lists(
    st.tuples(
        st.frozensets(st.sampled_from(CODES), max_size=4),
        st.sampled_from([None, *ZONES]),
        # confirmed this long ago (hours; negative = a clock-skewed future time), or never
        st.one_of(st.none(), st.integers(-48, 40 * 24)),
        # what they did: (kind, campaign, step, check-in answer, minutes ago); equal times on
        # purpose, so "latest check-in" ties are exercised too
        st.lists(
            st.tuples(
                st.sampled_from(activity.KINDS),
                st.sampled_from(["c1", "c2"]),
                st.sampled_from(["01", "02"]),
                st.sampled_from(ANSWERS),
                st.integers(0, 3),
            ),
            max_size=4,
        ),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture
def db(migrated_db: Database) -> Database:
    return migrated_db


EXAMPLES = int(os.environ.get("CLINICMAIL_TEST_SEGMENT_EXAMPLES", "60"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rule_list=st.lists(rules, min_size=1, max_size=8), population=people)
def test_sql_selection_equals_python_matches(db: Database, rule_list: Any, population: Any) -> None:
    with db.engine.connect() as conn:
        trans = conn.begin()
        try:
            ids = []
            for i, (codes, zone, hours, did) in enumerate(population):
                sid = insert_subscriber(
                    conn,
                    f"p{i}@example.com",
                    NOW,
                    public_id=f"{i:032d}",
                    timezone=zone,
                    confirmed_at=None if hours is None else NOW - timedelta(hours=hours),
                    codes=codes,
                )
                for kind, campaign, step, answer, minutes in did:
                    activity.record(
                        conn,
                        sid,
                        kind,
                        NOW - timedelta(minutes=minutes),
                        campaign_id=campaign,
                        step_id=step,
                        value=answer if kind == activity.CHECKIN else None,
                    )
                ids.append(sid)
            profiles = store.profiles(conn, ids)
            for rule_data in rule_list:
                rule = parse_rule(rule_data)
                in_sql = set(
                    conn.execute(
                        select(subscribers.c.id).where(compile_rule(rule, now=NOW))
                    ).scalars()
                )
                in_python = {sid for sid in ids if rule.matches(profiles[sid].facts(NOW))}
                assert in_sql == in_python, rule_data
        finally:
            trans.rollback()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"all": []}, {"a", "b", "c"}),
        ({"has": "sciatica"}, {"a"}),
        ({"not": {"timezone": "Europe/London"}}, {"b", "c"}),  # a missing zone is "not London"
        ({"subscribed_days_gte": 10}, {"a"}),
        ({"not": {"subscribed_days_gte": 10}}, {"b", "c"}),  # never confirmed counts as 0 days
        ({"any": [{"in_group": "red_flags"}, {"has_all": ["neck", "desk_posture"]}]}, {"b", "c"}),
    ],
)
@sqlite_only("what a rule means; its SQL meets Python on both databases in the property test")
def test_examples(migrated_db: Database, data: Any, expected: set[str]) -> None:
    db = migrated_db
    rows = {
        "a": ({"sciatica", "lower_back"}, "Europe/London", NOW - timedelta(days=20)),
        "b": ({"neck", "desk_posture"}, None, NOW - timedelta(days=2)),
        "c": ({"red_flag_major_trauma"}, "America/New_York", None),
    }
    with db.begin() as conn:
        for name, (codes, zone, confirmed) in rows.items():
            insert_subscriber(
                conn,
                f"{name}@example.com",
                NOW,
                public_id=name * 32,
                timezone=zone,
                confirmed_at=confirmed,
                codes=codes,
            )
        found = conn.execute(
            select(subscribers.c.email).where(compile_rule(parse_rule(data), now=NOW))
        ).scalars()
        assert {e.split("@")[0] for e in found} == expected


@sqlite_only("what a rule means; its SQL meets Python on both databases in the property test")
def test_checkin_ever_sees_an_earlier_worse_that_checkin_does_not(migrated_db: Database) -> None:
    """A "worse" in week 4, "better" in week 8: the latest answer is better, but the worse stays
    on record for ``checkin_ever`` (in Python and in SQL alike)."""
    db = migrated_db
    with db.begin() as conn:
        sid = insert_subscriber(
            conn, "w@example.com", NOW, public_id="w" * 32, confirmed_at=NOW, codes={"neck"}
        )
        for step, answer, days in (("04", "worse", 28), ("08", "better", 1)):
            activity.record(
                conn,
                sid,
                activity.CHECKIN,
                NOW - timedelta(days=days),
                campaign_id="c1",
                step_id=step,
                value=answer,
            )
        facts = store.profiles(conn, [sid])[sid].facts(NOW)
        for data, expected in (
            ({"checkin": "worse"}, False),
            ({"checkin": "better"}, True),
            ({"checkin_ever": "worse"}, True),
            ({"checkin_ever": "better"}, True),
            ({"checkin_ever": "same"}, False),
        ):
            rule = parse_rule(data)
            assert rule.matches(facts) is expected, data
            in_sql = conn.execute(
                select(subscribers.c.id).where(compile_rule(rule, now=NOW))
            ).scalars()
            assert (sid in set(in_sql)) is expected, data
