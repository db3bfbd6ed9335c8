"""PKCE (RFC 7636): S256 only; ``plain`` is refused (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1)."""

from __future__ import annotations

import hashlib
import re

from app.oauth.errors import InvalidGrant, InvalidRequest
from app.security import b64url, same

# RFC 7636 §4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# An S256 challenge is the base64url of a SHA-256 digest: always 43 characters.
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def validate_challenge(challenge: str | None, method: str | None, required: bool) -> None:
    """Check the authorization request's PKCE parameters (RFC 7636 §4.3)."""
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method without code_challenge.")
        if required:
            raise InvalidRequest("code_challenge is required (PKCE, S256).")
        return
    if (method or "plain") != "S256":
        raise InvalidRequest("Only code_challenge_method=S256 is supported.")
    if not _CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge is malformed.")


def verify(challenge: str | None, verifier: str | None) -> None:
    """RFC 7636 §4.6; a verifier without a challenge is refused (RFC 9700 §2.1.1)."""
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier sent but no code_challenge was used.")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required.")
    if not _VERIFIER.match(verifier) or not same(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge.")
