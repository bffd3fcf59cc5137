"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile), the
staff password policy, and the bound on how many hashes run at once.

Each argon2id hash takes about 64 MiB and a third of a second of one core. Every hash and
verification passes through :func:`_slot`: at most :data:`HASH_SLOTS` run at once, and a caller
that cannot get a slot within :data:`SLOT_WAIT` seconds gets :class:`PasswordsBusy` (the sign-in
page answers 429), so a flood of sign-ins costs a bounded amount of memory and CPU instead of
growing with the number of attempts. Callers hash *before* they open a database transaction:
a hash never runs while a write lock is held.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import InputError, RequestRefused

MIN_LENGTH = 12  # NIST SP 800-63B: length over composition rules; long passphrases welcome
MAX_LENGTH = 256  # argon2 takes any length; a bound stops a megabyte "password" costing CPU
MIN_SCORE = 3  # zxcvbn's 0-4 scale: 3 is "safely unguessable" (about 10^8 guesses or more)
HASH_SLOTS = 2  # argon2id hashes at once in one process (about 64 MiB each)
SLOT_WAIT = 2.0  # seconds a caller waits for a free slot before PasswordsBusy


class WeakPassword(InputError, ValueError):
    """The password does not meet the policy; the message says why in plain words."""


class PasswordsBusy(RequestRefused, RuntimeError):
    """Every hashing slot stayed busy for :data:`SLOT_WAIT` seconds; try again shortly."""


_SLOTS = threading.BoundedSemaphore(HASH_SLOTS)


@contextmanager
def _slot() -> Iterator[None]:
    if not _SLOTS.acquire(timeout=SLOT_WAIT):
        raise PasswordsBusy("too many sign-ins at once; try again in a moment")
    try:
        yield
    finally:
        _SLOTS.release()


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def check_policy(password: str, *, user_inputs: tuple[str, ...] = ()) -> None:
    """Raise :class:`WeakPassword` unless the password is 12 to 256 characters and not easily
    guessed: zxcvbn (offline, with its lists of common passwords, names and words, and the
    ``user_inputs`` such as the account's address) must rate it at least :data:`MIN_SCORE`."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must be at most {MAX_LENGTH} characters long")
    if not password.strip():
        raise WeakPassword("the password must not be only spaces")
    from zxcvbn import zxcvbn

    verdict = zxcvbn(password, user_inputs=list(user_inputs))
    if verdict["score"] < MIN_SCORE:
        warning = str(verdict["feedback"].get("warning") or "").rstrip(".")
        reason = f" ({warning[0].lower()}{warning[1:]})" if warning else ""
        raise WeakPassword(
            f"the password is too easy to guess{reason}: use a longer phrase of unrelated words"
        )


def hash_password(password: str, *, user_inputs: tuple[str, ...] = ()) -> str:
    """Check the policy and hash. Call it before opening a transaction."""
    check_policy(password, user_inputs=user_inputs)
    with _slot():
        return _hasher().hash(password)


def verify(password_hash: str, password: str) -> bool:
    """True when the password matches. Takes a hashing slot (may raise :class:`PasswordsBusy`);
    never call it inside a database transaction."""
    if len(password) > MAX_LENGTH:
        return False
    with _slot():
        try:
            return _hasher().verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


_DUMMY: list[str] = []
_DUMMY_LOCK = threading.Lock()


def _dummy_hash() -> str:
    """A hash to verify against for unknown addresses, made once: under a lock and in a
    hashing slot, so a flood's first wave cannot start one hash per request."""
    with _DUMMY_LOCK:
        if not _DUMMY:
            with _slot():
                _DUMMY.append(_hasher().hash("not a real password, only spends the same time"))
        return _DUMMY[0]


def burn_time(password: str) -> None:
    """Spend a verification's time for an unknown address, so timing does not tell which
    addresses have accounts."""
    verify(_dummy_hash(), password[:MAX_LENGTH])
