"""Template checks remembered across processes (templates.check_memory, kept in the database by
campaigns.content): a command loads the library without checking again what the same code
passed before, and trusts nothing checked by other code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select, update

from app.context import AppContext
from app.settings import load_settings
from campaigns import content, versions
from storage.schema import kv
from templates import ClinicInfo, Content, Renderer, TemplateProblem, check_memory
from tests.support.cli import CLI

CLINIC = ClinicInfo("Spine Clinic", "1 High St", "care@clinic.example", "https://b", "https://c")
BROKEN = Content(subject="Hello", preheader="", body="Hello {{ no_such_thing }}")
ALLOWED = frozenset({"clinic"})


def new_process() -> None:
    """Forget what this process checked and parsed, as a new process starts."""
    check_memory.memory.forget()
    versions._parsed.cache_clear()


@pytest.fixture(autouse=True)
def empty_memory() -> Iterator[None]:
    """Each test starts as a new process would, and leaves nothing it trusted behind (a later
    test in this process checks again what it needs)."""
    new_process()
    yield
    new_process()


@pytest.fixture
def ctx(sqlite_cli: CLI) -> Iterator[AppContext]:
    sqlite_cli.init()
    context = AppContext.from_settings(load_settings())
    try:
        yield context
    finally:
        context.close()


def stored(ctx: AppContext) -> dict[str, object]:
    with ctx.db.begin() as conn:
        value = conn.execute(select(kv.c.value).where(kv.c.key == content.CHECKS_KEY)).scalar()
    return dict(json.loads(value)) if value else {}


def store(ctx: AppContext, fingerprint: str, passed: list[str]) -> None:
    value = json.dumps({"fingerprint": fingerprint, "passed": passed})
    with ctx.db.begin() as conn:
        done = conn.execute(update(kv).where(kv.c.key == content.CHECKS_KEY).values(value=value))
    assert done.rowcount == 1  # init stored the library's checks


def test_the_library_checks_are_kept_and_only_what_is_missing_is_checked_again(
    ctx: AppContext,
) -> None:
    store(ctx, check_memory.fingerprint(), [])  # a new process that finds nothing stored
    new_process()
    ctx.catalog  # noqa: B018 - loading is what stores the checks
    first = stored(ctx)
    assert first["fingerprint"] == check_memory.fingerprint()
    passed = list(first["passed"])  # type: ignore[call-overload]
    steps = sum(len(step.variants) for c in ctx.catalog.campaigns.values() for step in c.steps)
    assert len(passed) >= steps > 40  # every step and variant of the bundled library
    # A new process trusts them all (test_a_pass_is_trusted_only_from_the_same_code shows a
    # trusted pass is not checked again): nothing is new, so nothing is written (a write would
    # put them back in order).
    store(ctx, check_memory.fingerprint(), passed[::-1])
    new_process()
    assert content.load(ctx.db, ctx.campaigns_dir, ctx.renderer)[0].campaigns
    assert stored(ctx)["passed"] == passed[::-1]
    # With half of them gone, those are checked again and kept again.
    store(ctx, check_memory.fingerprint(), passed[::2])
    new_process()
    content.load(ctx.db, ctx.campaigns_dir, ctx.renderer)
    assert sorted(stored(ctx)["passed"]) == sorted(passed)  # type: ignore[call-overload]


def test_a_database_lacking_what_this_process_checked_is_given_it(ctx: AppContext) -> None:
    """One process opening several databases of one clinic (a test run does): the next one is
    given the passes made for the first, though nothing is checked again for it."""
    content.load(ctx.db, ctx.campaigns_dir, ctx.renderer)
    passed = sorted(stored(ctx)["passed"])  # type: ignore[call-overload]
    assert passed
    store(ctx, check_memory.fingerprint(), [])  # as another database of this clinic holds
    content.load(ctx.db, ctx.campaigns_dir, ctx.renderer)
    assert sorted(stored(ctx)["passed"]) == passed  # type: ignore[call-overload]


def test_another_clinic_s_checks_are_added_beside(ctx: AppContext) -> None:
    store(ctx, check_memory.fingerprint(), [])
    new_process()
    ctx.catalog  # noqa: B018
    ours = set(stored(ctx)["passed"])  # type: ignore[call-overload]
    other = Renderer(replace(ctx.clinic, name="Another Clinic"))
    content.load(ctx.db, ctx.campaigns_dir, other)
    both = set(stored(ctx)["passed"])  # type: ignore[call-overload]
    assert ours < both and len(both - ours) >= len(ours) // 2


def test_a_pass_is_trusted_only_from_the_same_code(ctx: AppContext) -> None:
    renderer = Renderer(CLINIC)
    with pytest.raises(TemplateProblem, match="no_such_thing"):
        renderer.check(BROKEN, ALLOWED)
    # a problem is never remembered as a pass
    assert check_memory.memory.passes(check_memory.clinic_scope(CLINIC)) == set()
    forged = check_memory.digest(CLINIC, replace(BROKEN, name=""), sorted(ALLOWED))
    # Stored by other code (another version, other libraries): not trusted, checked again.
    store(ctx, "another-version", [forged])
    with ctx.db.begin() as conn:
        content.recall_checks(conn, check_memory.clinic_scope(CLINIC))
    with pytest.raises(TemplateProblem, match="no_such_thing"):
        renderer.check(BROKEN, ALLOWED)
    # Stored by this code: trusted, so the check is not made again (nothing but this code
    # writes a pass, and it writes one only for a check that found nothing).
    store(ctx, check_memory.fingerprint(), [forged])
    with ctx.db.begin() as conn:
        content.recall_checks(conn, check_memory.clinic_scope(CLINIC))
    renderer.check(BROKEN, ALLOWED)


def test_unreadable_stored_checks_are_ignored(ctx: AppContext) -> None:
    with ctx.db.begin() as conn:
        conn.execute(update(kv).where(kv.c.key == content.CHECKS_KEY).values(value="{not json"))
    new_process()
    catalog, _, broken = content.load(ctx.db, ctx.campaigns_dir, ctx.renderer)
    assert catalog.campaigns and not broken
    assert stored(ctx)["fingerprint"] == check_memory.fingerprint()
