"""Passwords (argon2id), random tokens, SHA-256 digests and constant-time checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# A valid hash of a random password: verifying against it when the user does not
# exist keeps the response time the same, so usernames cannot be probed by timing.
_DUMMY_PASSWORD = secrets.token_urlsafe(16)


class Passwords:
    """argon2id hashing with configured cost; rehash when parameters change."""

    def __init__(self, memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy = self._hasher.hash(_DUMMY_PASSWORD)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant-effort check; a missing hash still costs one argon2 verification."""
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and bool(stored_hash)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random value; 32 bytes = 256 bits."""
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """SHA-256 hex digest: what we store for secrets, codes and refresh tokens."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def same(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison."""
    if isinstance(a, str):
        a = a.encode("utf-8")
    if isinstance(b, str):
        b = b.encode("utf-8")
    return hmac.compare_digest(a, b)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def half_hash(value: str, alg: str) -> str:
    """OIDC Core §3.1.3.6 at_hash: left half of the hash matching the JWS alg."""
    bits = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
    full = bits(value.encode("ascii")).digest()
    return b64url(full[: len(full) // 2])
