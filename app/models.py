"""Typed SQLAlchemy 2 models. Tables are created only by Alembic migrations.

Secrets, codes and tokens are never stored in plain text: only SHA-256 digests.
Models stay pure: no Flask, no JWT, no session inside a method.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> int:
    return int(time.time())


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    given_name: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(255))
    middle_name: Mapped[str | None] = mapped_column(String(255))
    nickname: Mapped[str | None] = mapped_column(String(255))
    profile: Mapped[str | None] = mapped_column(String(2048))
    picture: Mapped[str | None] = mapped_column(String(2048))
    website: Mapped[str | None] = mapped_column(String(2048))
    gender: Mapped[str | None] = mapped_column(String(32))
    birthdate: Mapped[str | None] = mapped_column(String(10))
    zoneinfo: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    phone_number_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    updated_at: Mapped[int] = mapped_column(Integer, default=now, onupdate=now)


class Client(Base):
    """An OAuth client with its RFC 7591 metadata."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    secret_expires_at: Mapped[int] = mapped_column(Integer, default=0)
    issued_at: Mapped[int] = mapped_column(Integer, default=now)
    registration_token_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    token_endpoint_auth_method: Mapped[str] = mapped_column(
        String(32), default="client_secret_basic"
    )
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    response_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text, default="")
    client_name: Mapped[str | None] = mapped_column(String(255))
    client_uri: Mapped[str | None] = mapped_column(String(2048))
    logo_uri: Mapped[str | None] = mapped_column(String(2048))
    tos_uri: Mapped[str | None] = mapped_column(String(2048))
    policy_uri: Mapped[str | None] = mapped_column(String(2048))
    contacts: Mapped[list[str]] = mapped_column(JSON, default=list)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    software_id: Mapped[str | None] = mapped_column(String(255))
    software_version: Mapped[str | None] = mapped_column(String(255))
    application_type: Mapped[str] = mapped_column(String(16), default="web")
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(16), default="RS256")
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    updated_at: Mapped[int] = mapped_column(Integer, default=now, onupdate=now)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in (self.grant_types or [])

    def allowed_scopes(self) -> set[str]:
        return set((self.scope or "").split())


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str | None] = mapped_column(String(2048))
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    auth_time: Mapped[int] = mapped_column(Integer)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    sid: Mapped[str | None] = mapped_column(String(64))
    max_age_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
    used_at: Mapped[int | None] = mapped_column(Integer)
    family_id: Mapped[str | None] = mapped_column(String(36))


class Token(Base):
    """An issued token: opaque refresh tokens (digest) and user-bound access tokens (jti).

    A *family* is every token descended from one authorization code; reuse of a
    rotated-out refresh token revokes the whole family (RFC 9700 §4.14.2).
    """

    __tablename__ = "tokens"
    __table_args__ = (Index("ix_tokens_client_user", "client_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # "access" | "refresh"
    jti: Mapped[str | None] = mapped_column(String(64), unique=True)
    digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    issued_at: Mapped[int] = mapped_column(Integer, default=now)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
    revoked_at: Mapped[int | None] = mapped_column(Integer)
    rotated_at: Mapped[int | None] = mapped_column(Integer)
    # The successor's token response, encrypted with a key derived from this
    # (rotated-out) refresh token, so only a retry holding it can read it.
    successor: Mapped[bytes | None] = mapped_column(LargeBinary)
    auth_time: Mapped[int | None] = mapped_column(Integer)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    sid: Mapped[str | None] = mapped_column(String(64))

    def is_active(self, at: int) -> bool:
        return self.revoked_at is None and self.expires_at > at


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (Index("uq_consents_user_client", "user_id", "client_id", unique=True),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    granted_at: Mapped[int] = mapped_column(Integer, default=now)

    def covers(self, scopes: set[str]) -> bool:
        return scopes <= set(self.scope.split())


class InitialAccessToken(Base):
    """RFC 7591 §3: a token an operator hands out to allow registration."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    expires_at: Mapped[int] = mapped_column(Integer)
    uses_left: Mapped[int | None] = mapped_column(Integer)


class RevokedJti(Base):
    """Deny-list of JWT ids, used when Redis is not configured."""

    __tablename__ = "revoked_jtis"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)


class OneTimeKey(Base):
    """Single-use markers (e.g. client assertion jti) when Redis is not configured."""

    __tablename__ = "one_time_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)


class WebSession(Base):
    """Browser sessions when Redis is not configured; keyed by the id's digest."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
