"""Token introspection (RFC 7662) and revocation (RFC 7009).

A client sees and revokes only tokens issued to it: another client's token
introspects as inactive and cannot be revoked.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from app.models import Client, Token
from app.oauth.errors import InvalidRequest, InvalidToken
from app.oauth.tokens import TokenIssuer
from app.state import SharedState
from app.store import find_refresh_token, find_token_by_jti, find_user, revoke_family

INACTIVE: dict[str, Any] = {"active": False}


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


def introspect_jwt(
    tokens: TokenIssuer, state: SharedState, client: Client, value: str
) -> dict[str, Any]:
    """A JWT access token: signature, expiry and the deny-list decide; no database."""
    try:
        claims = tokens.decode_access_token(value)
    except InvalidToken:
        return INACTIVE
    if claims.get("client_id") != client.id or state.is_denied(claims["jti"]):
        return INACTIVE
    out = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "auth_time"):
        if name in claims:
            out[name] = claims[name]
    return out


def introspect(
    db: Session, tokens: TokenIssuer, state: SharedState, client: Client, value: str
) -> dict[str, Any]:
    """RFC 7662 §2.2: the token's metadata if active and the caller's; else inactive."""
    if _looks_like_jwt(value):
        return introspect_jwt(tokens, state, client, value)
    token = find_refresh_token(db, value)
    now = int(time.time())
    if token is None or token.client_id != client.id or not token.is_active(now):
        return INACTIVE
    if token.rotated_at is not None:
        return INACTIVE
    out = {
        "active": True,
        "token_type": "refresh_token",
        "scope": token.scope,
        "client_id": token.client_id,
        "sub": token.user_id,
        "iss": tokens.issuer,
        "exp": token.expires_at,
        "iat": token.issued_at,
    }
    user = find_user(db, token.user_id) if token.user_id else None
    if user is not None:
        out["username"] = user.username
    return out


def revoke(
    db: Session, tokens: TokenIssuer, state: SharedState, client: Client, value: str
) -> str | None:
    """RFC 7009 §2.1; returns what was revoked ("access", "refresh") or None if unknown."""
    now = int(time.time())
    if _looks_like_jwt(value):
        try:
            claims = tokens.decode_access_token(value)
        except InvalidToken:
            return None  # §2.2: invalid tokens need no action
        if claims.get("client_id") != client.id:
            raise InvalidRequest("The token was not issued to this client.")
        state.deny(claims["jti"], int(claims["exp"]), db)
        row = find_token_by_jti(db, claims["jti"])
        if row is not None and row.revoked_at is None:
            row.revoked_at = now
        return "access"
    token = find_refresh_token(db, value)
    if token is None:
        return None
    if token.client_id != client.id:
        raise InvalidRequest("The token was not issued to this client.")
    _revoke_family(db, state, token, now)
    return "refresh"


def _revoke_family(db: Session, state: SharedState, token: Token, now: int) -> None:
    """§2.1: revoking a refresh token also revokes the access tokens of its grant."""
    for access in revoke_family(db, token.family_id, now):
        state.deny(access.jti or "", access.expires_at, db)
