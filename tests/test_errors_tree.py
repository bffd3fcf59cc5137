"""Every error we raise descends from one root, keeps the built-in it always had, and reaches
the user of the command line as one clean line with a non-zero exit."""

from __future__ import annotations

import importlib

import pytest

from core.errors import ClinicmailError, ConfigError, InputError, RequestRefused, Unavailable
from scripts import error_tree
from subscribers.addresses import InvalidAddress, normalize
from tests.support.cli import CLI


def test_every_exception_class_of_ours_descends_from_clinicmail_error() -> None:
    classes = error_tree.exception_classes()
    assert len(classes) >= 25  # the walk really reached the packages
    strays = [
        f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, ClinicmailError)
    ]
    assert strays == []


def test_the_drawn_tree_is_the_code_s() -> None:
    """docs/architecture.md draws the tree; a class added, moved or re-parented without
    ``python scripts/error_tree.py --write`` fails here."""
    text = error_tree.DRAWING.read_text(encoding="utf-8")
    assert error_tree.drawn(text) == error_tree.draw()


def test_every_class_sits_in_a_family() -> None:
    families = (ConfigError, InputError, Unavailable, RequestRefused)
    roots = {ClinicmailError, *families}
    loose = [
        c.__qualname__
        for c in error_tree.exception_classes()
        if c not in roots and not issubclass(c, families)
    ]
    assert loose == []


@pytest.mark.parametrize(
    ("path", "builtin"),
    [
        ("storage.db.DatabaseError", RuntimeError),
        ("storage.keys.KeyFileError", RuntimeError),
        ("deliverability.lookup.DnsUnavailable", RuntimeError),
        ("templates.render.TemplateProblem", ValueError),
        ("subscribers.addresses.InvalidAddress", ValueError),
        ("subscribers.importer.ImportFileError", ValueError),
        ("campaigns.loader.CatalogError", ValueError),
        ("campaigns.versions.VersionError", ValueError),
        ("engagement.ingest.BadBatch", ValueError),
        ("staff.passwords.WeakPassword", ValueError),
        ("app.settings.SettingsError", ValueError),
        ("app.broadcasting.BroadcastRefused", ValueError),
        ("transports.base.TransportConfigError", ValueError),
    ],
)
def test_members_keep_their_builtin_so_every_except_still_catches_them(
    path: str, builtin: type[Exception]
) -> None:
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ClinicmailError) and issubclass(cls, builtin)


def test_the_jinja_bound_error_is_still_a_jinja_security_error() -> None:
    from jinja2.exceptions import SecurityError

    from templates.render import TooMuchWork

    assert issubclass(TooMuchWork, SecurityError) and issubclass(TooMuchWork, InputError)


def test_a_clinicmail_error_inside_a_command_is_one_clean_line_and_exit_1(sqlite_cli: CLI) -> None:
    with pytest.raises(InvalidAddress) as raised:
        normalize("not an address")
    # The export command lets the domain's error go: the CLI's one handler reports it.
    run = sqlite_cli("subscribers", "export", "not an address")
    assert run.code == 1
    assert run.out == ""
    assert run.err == f"clinicmail: {raised.value}\n"
    assert "Traceback" not in run.err


def test_a_refused_broadcast_cancel_is_one_line_naming_what_is_known(sqlite_cli: CLI) -> None:
    run = sqlite_cli("campaigns", "cancel-broadcast", "nope")
    assert run.code == 1
    assert run.err == "clinicmail: no broadcast 'nope'; known: none\n"
