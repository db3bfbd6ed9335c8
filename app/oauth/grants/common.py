"""What every grant shares: the context it runs in and user-bound token issuance."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from app.models import Client, Token, User
from app.oauth.params import Params
from app.oauth.tokens import TokenIssuer
from app.security import digest, random_token
from app.state import SharedState


class GrantContext:
    """What a grant runs with. The database session is opened only if a grant needs it,
    so client_credentials costs no connection."""

    def __init__(
        self,
        *,
        open_db: Callable[[], Session],
        tokens: TokenIssuer,
        state: SharedState,
        refresh_grace: int,
        now: int,
        event: Callable[..., None],
    ):
        self._open_db = open_db
        self._db: Session | None = None
        self.tokens = tokens
        self.state = state
        self.refresh_grace = refresh_grace
        self.now = now
        self.event = event

    @property
    def db(self) -> Session:
        if self._db is None:
            self._db = self._open_db()
        return self._db

    @property
    def used_db(self) -> bool:
        return self._db is not None

    def find_user(self, user_id: str) -> User | None:
        return self.db.get(User, user_id)


class GrantHandler(Protocol):
    def __call__(self, ctx: GrantContext, client: Client, params: Params) -> dict[str, Any]: ...


@dataclass
class SignIn:
    """The sign-in a family of tokens descends from."""

    auth_time: int | None
    sid: str | None
    acr: str | None
    amr: list[str] | None


def issue_user_tokens(
    ctx: GrantContext,
    client: Client,
    user: User,
    scope: str,
    family_id: str,
    signin: SignIn,
    *,
    nonce: str | None = None,
    with_id_token: bool = True,
) -> dict[str, Any]:
    """Access token (+ refresh token, + ID token for openid) for a user; rows added to db."""
    access, claims = ctx.tokens.access_token(
        client_id=client.id,
        subject=user.id,
        scope=scope,
        auth_time=signin.auth_time,
        now=ctx.now,
    )
    ctx.db.add(
        Token(
            kind="access",
            jti=claims["jti"],
            client_id=client.id,
            user_id=user.id,
            scope=scope,
            family_id=family_id,
            issued_at=ctx.now,
            expires_at=claims["exp"],
        )
    )
    response: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": claims["exp"] - ctx.now,
        "scope": scope,
    }
    if client.allows_grant("refresh_token"):
        refresh = random_token(32)
        ctx.db.add(
            Token(
                kind="refresh",
                digest=digest(refresh),
                client_id=client.id,
                user_id=user.id,
                scope=scope,
                family_id=family_id,
                issued_at=ctx.now,
                expires_at=ctx.now + ctx.tokens.lifetimes.refresh,
                auth_time=signin.auth_time,
                sid=signin.sid,
                acr=signin.acr,
                amr=signin.amr,
            )
        )
        response["refresh_token"] = refresh
    if with_id_token and "openid" in scope.split():
        response["id_token"] = ctx.tokens.id_token(
            client_id=client.id,
            subject=user.id,
            auth_time=signin.auth_time or ctx.now,
            alg=client.id_token_signed_response_alg,
            nonce=nonce,
            access_token=access,
            sid=signin.sid,
            acr=signin.acr,
            amr=signin.amr,
        )
    return response


def revoke_family_tokens(ctx: GrantContext, family_id: str) -> None:
    """Revoke a family and deny-list its access tokens (RFC 9700 §4.14.2)."""
    from app.store import revoke_family

    for token in revoke_family(ctx.db, family_id, ctx.now):
        ctx.state.deny(token.jti or "", token.expires_at, ctx.db)


def _box(refresh_token: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"tessera-successor\x00" + refresh_token.encode()).digest())


def seal_response(refresh_token: str, response: dict[str, Any]) -> bytes:
    """Encrypt a token response so that only a holder of ``refresh_token`` can read it."""
    nonce = os.urandom(12)
    return nonce + _box(refresh_token).encrypt(nonce, json.dumps(response).encode(), None)


def open_response(refresh_token: str, sealed: bytes) -> dict[str, Any] | None:
    try:
        return json.loads(_box(refresh_token).decrypt(sealed[:12], sealed[12:], None))
    except (InvalidTag, ValueError):
        return None
