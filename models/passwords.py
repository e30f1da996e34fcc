"""Staff passwords and user names, without a database.

Passwords are argon2id hashes (argon2-cffi); a hash made with older parameters needs
rehashing. User names are kept in lower case. Submitted secrets (CSRF tokens) are compared
in constant time.
"""

from __future__ import annotations

import hmac
import re
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from models.errors import CxloopError

PASSWORD_MIN = 10
PASSWORD_MAX = 1024  # argon2 hashes anything, but a megabyte "password" is an attack
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,99}$")

_HASHER = PasswordHasher()  # argon2id with the library's recommended parameters


class StaffUserError(CxloopError, ValueError):
    """A staff user cannot be created or changed as asked (the message says why)."""


@cache
def dummy_hash() -> str:
    """Verified against when the user is unknown, so a wrong name costs as long as a wrong
    password (made on first use: no work at import time)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def normal_username(username: str) -> str:
    """The stored form of a user name (lower case, trimmed); StaffUserError if unusable."""
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise StaffUserError(
            "a user name is 1–100 letters, digits and . _ @ + - (starting with a letter or digit)"
        )
    return name


def check_password_strength(password: str) -> None:
    """StaffUserError when *password* is too short or absurdly long."""
    if len(password) < PASSWORD_MIN:
        raise StaffUserError(f"a password needs at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise StaffUserError(f"a password has at most {PASSWORD_MAX} characters")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether *password* matches the *stored* hash (False for a malformed hash)."""
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether *stored* was made with other parameters than today's."""
    return _HASHER.check_needs_rehash(stored)


def same_secret(given: object, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
