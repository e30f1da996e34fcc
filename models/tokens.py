"""Survey-link tokens: 256 random bits for the customer, only a SHA-256 hash for us."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32
_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_token() -> str:
    """A fresh URL-safe token with 256 bits of randomness."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The stored form of *token*: hex SHA-256 (the token itself is never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(token: str) -> bool:
    """Cheap shape check before a database look-up."""
    return 20 <= len(token) <= 100 and all(c in _URLSAFE for c in token)
