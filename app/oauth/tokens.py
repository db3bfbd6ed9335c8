"""JWT access tokens (RFC 9068), ID tokens (OIDC Core §2) and their validation."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from app.keys import KeyStore, SigningKey
from app.oauth.errors import InvalidToken
from app.security import half_hash

ACCESS_TOKEN_TYPE = "at+jwt"


@dataclass(frozen=True)
class Lifetimes:
    access: int = 600
    id_token: int = 600
    refresh: int = 14 * 24 * 3600
    code: int = 60


class TokenIssuer:
    """Signs and checks the tokens this issuer mints, with keys held in memory."""

    def __init__(self, issuer: str, keys: KeyStore, lifetimes: Lifetimes, audience: str):
        self.issuer = issuer
        self.keys = keys
        self.lifetimes = lifetimes
        self.audience = audience
        self._verified: dict[str, dict[str, Any]] = {}

    def access_token(
        self,
        *,
        client_id: str,
        subject: str,
        scope: str,
        auth_time: int | None = None,
        now: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """RFC 9068 §2.2: a signed JWT access token and its claims."""
        now = now or int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "client_id": client_id,
            "iat": now,
            "exp": now + self.lifetimes.access,
            "jti": uuid.uuid4().hex,
        }
        if scope:
            claims["scope"] = scope
        if auth_time is not None:
            claims["auth_time"] = auth_time
        return _sign(claims, self.keys.signing_key(), ACCESS_TOKEN_TYPE), claims

    def id_token(
        self,
        *,
        client_id: str,
        subject: str,
        auth_time: int,
        alg: str | None,
        nonce: str | None = None,
        access_token: str | None = None,
        sid: str | None = None,
        acr: str | None = None,
        amr: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """OIDC Core §2 ID token; at_hash when issued beside an access token (§3.1.3.6)."""
        now = int(time.time())
        key = self.keys.signing_key(alg) if alg in self.keys.algs else self.keys.signing_key()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "exp": now + self.lifetimes.id_token,
            "iat": now,
            "auth_time": auth_time,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["at_hash"] = half_hash(access_token, key.alg)
        if sid:
            claims["sid"] = sid
        if acr:
            claims["acr"] = acr
        if amr:
            claims["amr"] = amr
        if extra:
            claims.update(extra)
        return _sign(claims, key, "JWT")

    def decode_access_token(self, token: str) -> dict[str, Any]:
        """Verify signature, typ, iss, aud and exp (RFC 9068 §4); raise InvalidToken.

        A resource server presents the same token many times in its life, so tokens
        that verified are remembered (by their exact text) until they expire; expiry
        is checked on every call, and revocation is the caller's deny-list check.
        The returned claims are shared: treat them as read-only.
        """
        claims = self._verified.get(token)
        if claims is not None:
            if claims["exp"] > time.time() - LEEWAY:
                return claims
            self._verified.pop(token, None)
        parts, header = _parse(token)
        if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
            raise InvalidToken(detail="not an access token")
        claims = self._verify(parts, header, audience=self.audience)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def decode_id_token_hint(self, token: str) -> dict[str, Any]:
        """An ID token we issued; expiry is not checked (OIDC Core §3.1.2.1 id_token_hint)."""
        parts, header = _parse(token)
        if str(header.get("typ", "JWT")).lower() != "jwt":
            raise InvalidToken(detail="not an ID token")
        return self._verify(parts, header, audience=None, verify_exp=False)

    def _verify(
        self,
        parts: list[str],
        header: dict[str, Any],
        *,
        audience: str | None,
        verify_exp: bool = True,
    ) -> dict[str, Any]:
        """Our own tokens only: the kid must be one of our keys, with that key's alg.

        A lean path (this runs on every introspection and userinfo call): PyJWT's
        algorithm objects check the signature; the claims are checked here.
        """
        kid = header.get("kid")
        key = self.keys.by_kid.get(kid) if isinstance(kid, str) else None
        if key is None or header.get("alg") != key.alg or "crit" in header:
            raise InvalidToken(detail="unknown kid or algorithm")
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not _ALGORITHMS[key.alg].verify(signing_input, key.public_key, _b64decode(parts[2])):
            raise InvalidToken(detail="bad signature")
        claims = _json_object(_b64decode(parts[1]))
        now = time.time()
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        if claims.get("iss") != self.issuer or not isinstance(claims.get("sub"), str):
            raise InvalidToken(detail="wrong issuer or no subject")
        if not _is_number(exp) or not _is_number(iat) or (nbf is not None and not _is_number(nbf)):
            raise InvalidToken(detail="malformed time claims")
        if verify_exp and exp <= now - LEEWAY:
            raise InvalidToken(detail="expired")
        if nbf is not None and nbf > now + LEEWAY:
            raise InvalidToken(detail="not yet valid")
        if audience is not None:
            aud = claims.get("aud")
            if audience not in (
                [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            ):
                raise InvalidToken(detail="wrong audience")
        return claims


LEEWAY = 5


def _sign(claims: dict[str, Any], key: SigningKey, typ: str) -> str:
    """A compact JWS (RFC 7515 §3.1) with a header that is fixed per key and type.

    The same as jwt.encode, minus the per-call header building and checks: this runs
    once per token issued. PyJWT's algorithm object does the signing.
    """
    header = _HEADERS.get((key.kid, typ))
    if header is None:
        raw = json.dumps({"alg": key.alg, "kid": key.kid, "typ": typ}, separators=(",", ":"))
        header = _HEADERS[(key.kid, typ)] = _b64encode(raw.encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    signature = _ALGORITHMS[key.alg].sign(signing_input.encode("ascii"), key.private_key)
    return f"{signing_input}.{_b64encode(signature)}"


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_HEADERS: dict[tuple[str, str], str] = {}
VERIFIED_CACHE_SIZE = 4096
_ALGORITHMS = jwt.algorithms.get_default_algorithms()
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")
MAX_TOKEN_LENGTH = 8192


def _b64decode(segment: str) -> bytes:
    if len(segment) % 4 == 1 or not _BASE64URL.match(segment):
        raise InvalidToken(detail="malformed base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise InvalidToken(detail="malformed JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(detail="not a JSON object")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse(token: str) -> tuple[list[str], dict[str, Any]]:
    """Split a compact JWS and read its header (RFC 7515 §7.1)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken(detail="not a token")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken(detail="not a compact JWS")
    return parts, _json_object(_b64decode(parts[0]))
