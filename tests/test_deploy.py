"""The deployment files in deploy/ pass their own validators: the systemd units
(``systemd-analyze verify``), the reverse proxy examples (``caddy validate``, ``nginx -t``) and
the Prometheus scrape config and alert rules (``promtool``), each where the tool is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import CLI
from tests.support.serve import EXE

DEPLOY = Path(__file__).parent.parent / "deploy"
INSTALLED = "/opt/clinicmail/venv/bin/clinicmail"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} >= {"clinicmail-web.service", "clinicmail-scheduler.service"}
    for unit in units:
        # verify checks that ExecStart's program exists: point it at this venv's clinicmail
        text = unit.read_text(encoding="utf-8")
        assert INSTALLED in text or unit.suffix == ".timer", unit.name
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, EXE), encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "clinicmail" not in done.stderr, done.stderr  # no warning about our units


def test_the_units_run_what_the_docs_say() -> None:
    web = (DEPLOY / "systemd" / "clinicmail-web.service").read_text(encoding="utf-8")
    sched = (DEPLOY / "systemd" / "clinicmail-scheduler.service").read_text(encoding="utf-8")
    assert "serve --no-scheduler" in web and "serve --scheduler-only" in sched
    for unit in (web, sched):
        assert "CLINICMAIL_DATA_DIR=" in unit and "UMask=0077" in unit


def test_caddyfile_validates() -> None:
    caddy = _tool("caddy")
    done = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(DEPLOY / "Caddyfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_nginx_config_validates(tmp_path: Path) -> None:
    """deploy/nginx.conf, included in the ``http`` block of a wrapper (as a conf.d snippet is),
    passes ``nginx -t``; the certificate paths point at a certificate made for the test, since
    nginx loads them while checking."""
    import trustme

    nginx = _tool("nginx")
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    live = "/etc/letsencrypt/live/mail.yourclinic.example"
    assert f"{live}/fullchain.pem" in text and f"{live}/privkey.pem" in text
    leaf = trustme.CA().issue_cert("mail.yourclinic.example")
    chain, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    chain.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    snippet = tmp_path / "clinicmail.conf"
    snippet.write_text(
        text.replace(f"{live}/fullchain.pem", str(chain)).replace(f"{live}/privkey.pem", str(key)),
        encoding="utf-8",
    )
    temp = "\n".join(
        f"    {kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    wrapper = tmp_path / "nginx.conf"
    wrapper.write_text(
        f"pid {tmp_path / 'nginx.pid'};\n"
        f"error_log {tmp_path / 'error.log'};\n"
        "events {}\n"
        "http {\n"
        f"{temp}\n"
        f"    include {snippet};\n"
        "}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(wrapper)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr, done.stderr
    assert "[warn]" not in done.stderr and "[emerg]" not in done.stderr, done.stderr


def test_prometheus_config_and_rules_check() -> None:
    promtool = _tool("promtool")
    rules = DEPLOY / "prometheus" / "clinicmail-alerts.yml"
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_scrape_config_checks(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    token = tmp_path / "clinicmail-metrics-token"
    token.write_text("a-metrics-token-of-16-or-more\n", encoding="utf-8")
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    assert "/etc/prometheus/clinicmail-metrics-token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/clinicmail-metrics-token", str(token)), encoding="utf-8"
    )
    shutil.copy(DEPLOY / "prometheus" / "clinicmail-alerts.yml", tmp_path)
    done = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_command_in_the_runbook_exists(bare_cli: CLI) -> None:
    """Each ``clinicmail …`` line in docs/operations.md's code blocks names a real command
    (its ``--help`` answers), so the runbook cannot drift from the CLI."""
    text = (DEPLOY.parent / "docs" / "operations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    commands = set()
    for block in blocks:
        for line in block.splitlines():
            words = line.split("#")[0].split()
            at = [
                i
                for i, w in enumerate(words)
                if (w == "clinicmail" or w.endswith("/bin/clinicmail"))
                and (i == 0 or words[i - 1] not in ("-u", "--owner", "--user"))
            ]
            if at and not words[0].startswith(("useradd", "python3", "chmod")):
                rest = words[at[0] + 1 : at[0] + 3]
                sub = [w for w in rest if not w.startswith(("-", "/", "$", "'"))]
                if sub:
                    commands.add(tuple(sub[:2] if sub[0] == "keys" else sub[:1]))
    assert {("upgrade",), ("restore",), ("keys", "rotate"), ("init",)} <= commands, commands
    for command in sorted(commands):
        run = bare_cli(*command, "--help")
        assert run.code == 0, (command, run.err)
