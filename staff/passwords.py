"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import InputError

MIN_LENGTH = 8  # NIST SP 800-63B: length over composition rules; long passphrases welcome
MAX_LENGTH = 256  # argon2 takes any length; a bound stops a megabyte "password" costing CPU


class WeakPassword(InputError, ValueError):
    """The password does not meet the policy; the message says why in plain words."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must be at most {MAX_LENGTH} characters long")
    if not password.strip():
        raise WeakPassword("the password must not be only spaces")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher().hash(password)


def verify(password_hash: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher().hash("not a real password, only spends the same time")


def burn_time(password: str) -> None:
    """Spend a verification's time for an unknown address, so timing does not tell which
    addresses have accounts."""
    verify(_dummy_hash(), password[:MAX_LENGTH])
