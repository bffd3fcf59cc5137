"""A real IMAP server (Debian's dovecot-imapd) on loopback, IMAPS only, with its own
configuration, certificate (a trustme authority) and one mailbox user from a static file.

``.ci/run`` installs dovecot and sets ``CLINICMAIL_TEST_REQUIRE_IMAP=1``, so there a missing
dovecot fails the test instead of skipping it.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.support.serve import free_port
from tests.support.wait import wait_until

REQUIRE = os.environ.get("CLINICMAIL_TEST_REQUIRE_IMAP") == "1"
USER, PASSWORD = "bounces", "s3cret-mailbox"


@dataclass
class Dovecot:
    port: int
    ca_file: Path  # the authority that signed the server's certificate
    folder: Path

    def url(self, folder: str = "INBOX", password: str = PASSWORD) -> str:
        return f"imaps://{USER}:{password}@127.0.0.1:{self.port}/{folder}"

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        """Put each message into ``folder`` by IMAP APPEND, as a mail server's delivery would."""
        imap = self.client()
        try:
            for raw in messages:
                status, _ = imap.append(folder, None, None, raw)
                assert status == "OK"
        finally:
            imap.logout()

    def flags(self, folder: str = "INBOX") -> list[str]:
        """Each message's flags, in order."""
        imap = self.client()
        try:
            imap.select(folder, readonly=True)
            _, data = imap.fetch("1:*", "(FLAGS)")
            return [d.decode() for d in data if isinstance(d, bytes)]
        finally:
            imap.logout()


# Inside ``service anvil``: no penalty for failed logins (see auth_failure_delay below).
NO_PENALTY = "  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n"


def _config(root: Path, port: int, root_user: bool) -> str:
    me = pwd.getpwuid(os.getuid()).pw_name
    if root_user:
        # dovecot refuses to run its login and mail processes as root: Debian's own users.
        mail = pwd.getpwnam("dovecot")
        users = "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
        services = "service auth {\n  user = root\n}\n"  # reads the passdb in this 0700 tree
        services += f"service anvil {{\n{NO_PENALTY}}}\n"
    else:  # dovecot's rootless mode: everything as this user, no chroot
        mail = pwd.getpwuid(os.getuid())
        users = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        services = "".join(
            f"service {name} {{\n  chroot =\n{NO_PENALTY if name == 'anvil' else ''}}}\n"
            for name in ("imap-login", "anvil", "stats")
        )
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
# A refused login is answered at once, and the next one is not held back: dovecot's pauses
# against guessing (a delay, then a growing penalty per client address, switched off by closing
# anvil's penalty socket) only make the wrong-password test wait.
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
{users}{services}service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={root}/home/%u
}}
"""


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"dovecot exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(listening, timeout=30, message="dovecot did not start listening")


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    binary = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )
    if binary is None:
        if REQUIRE:
            pytest.fail("CLINICMAIL_TEST_REQUIRE_IMAP=1 but dovecot is not installed")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    root_user = os.getuid() == 0
    # Its own folder outside pytest's (0700) tree: dovecot's unprivileged processes must reach
    # the mail folder, and nothing but this server is in it.
    root = Path(tempfile.mkdtemp(prefix="clinicmail-imap-"))
    try:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        ca.cert_pem.write_to_path(str(root / "ca.pem"))
        (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        home = root / "home" / USER
        home.mkdir(parents=True)
        port = free_port()
        (root / "dovecot.conf").write_text(_config(root, port, root_user))
        if root_user:
            mail = pwd.getpwnam("dovecot")
            os.chmod(root, 0o711)  # noqa: S103 - dovecot's own users pass through to the mail
            os.chown(root / "home", mail.pw_uid, mail.pw_gid)
            os.chown(home, mail.pw_uid, mail.pw_gid)
        proc = subprocess.Popen(
            [binary, "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(port, proc, root / "dovecot.log")
            yield Dovecot(port=port, ca_file=root / "ca.pem", folder=root)
        finally:
            # SIGQUIT: the master stops at once and leaves client processes to end with their
            # connections (the test's are closed). SIGTERM waited a second or more for them.
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
