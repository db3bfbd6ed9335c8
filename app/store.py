"""Named queries over the models. Functions here never commit: the caller does, once."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.models import AuthorizationCode, Client, Consent, InitialAccessToken, Token, User
from app.security import digest
from app.state import SharedState


def find_user(db: Session, user_id: str) -> User | None:
    return db.get(User, user_id)


def storable(value: str) -> bool:
    """False for text no user or client can have: PostgreSQL text cannot hold NUL."""
    return "\x00" not in value


def find_user_by_login(db: Session, login: str) -> User | None:
    """Look a user up by username or e-mail address (case-insensitive for e-mail)."""
    login = login.strip()
    if not storable(login):
        return None
    return db.scalar(
        select(User).where(or_(User.username == login, User.email == login.lower())).limit(1)
    )


def find_client(db: Session, client_id: str) -> Client | None:
    return db.get(Client, client_id) if storable(client_id) else None


def find_client_by_registration_token(db: Session, token: str) -> Client | None:
    return db.scalar(select(Client).where(Client.registration_token_digest == digest(token)))


def find_code(db: Session, code: str) -> AuthorizationCode | None:
    return db.scalar(select(AuthorizationCode).where(AuthorizationCode.digest == digest(code)))


def consume_code(db: Session, code: AuthorizationCode, family_id: str, at: int) -> bool:
    """Mark a code used, atomically: True for exactly one concurrent caller."""
    result = db.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == code.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=at, family_id=family_id)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def find_refresh_token(db: Session, value: str) -> Token | None:
    return db.scalar(select(Token).where(Token.digest == digest(value), Token.kind == "refresh"))


def find_token_by_jti(db: Session, jti: str) -> Token | None:
    return db.scalar(select(Token).where(Token.jti == jti))


def rotate_refresh_token(db: Session, token: Token, successor: bytes, at: int) -> bool:
    """Mark a refresh token rotated, atomically; stores the sealed successor response."""
    result = db.execute(
        update(Token)
        .where(Token.id == token.id, Token.rotated_at.is_(None), Token.revoked_at.is_(None))
        .values(rotated_at=at, successor=successor)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def revoke_family(db: Session, family_id: str, at: int) -> list[Token]:
    """Revoke every token of a family; returns the access tokens to deny-list."""
    tokens = list(db.scalars(select(Token).where(Token.family_id == family_id)))
    db.execute(
        update(Token)
        .where(Token.family_id == family_id, Token.revoked_at.is_(None))
        .values(revoked_at=at)
        .execution_options(synchronize_session=False)
    )
    return [t for t in tokens if t.kind == "access" and t.jti]


def find_consent(db: Session, user_id: str, client_id: str) -> Consent | None:
    return db.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )


def save_consent(db: Session, user_id: str, client_id: str, scopes: set[str]) -> Consent:
    """Remember a grant, widening an earlier one for the same user and client."""
    consent = find_consent(db, user_id, client_id)
    if consent is None:
        consent = Consent(user_id=user_id, client_id=client_id, scope="")
        db.add(consent)
    consent.scope = " ".join(sorted(set(consent.scope.split()) | scopes))
    consent.granted_at = int(time.time())
    return consent


def use_initial_access_token(db: Session, token: str, at: int) -> bool:
    """RFC 7591 §3: accept a live initial access token, counting down its uses."""
    row = db.scalar(select(InitialAccessToken).where(InitialAccessToken.digest == digest(token)))
    if row is None or row.expires_at <= at:
        return False
    if row.uses_left is not None:
        result = db.execute(
            update(InitialAccessToken)
            .where(InitialAccessToken.id == row.id, InitialAccessToken.uses_left > 0)
            .values(uses_left=InitialAccessToken.uses_left - 1)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1
    return True


def count_users(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(User)) or 0


class ClientCache:
    """Clients kept in process memory: the token endpoint then needs no database read.

    With Redis, every change bumps a shared epoch that each worker checks at most
    once per ``EPOCH_CHECK`` seconds; without Redis, entries expire after ``ttl``.
    Cached objects are detached and treated as read-only.
    """

    EPOCH_CHECK = 1.0

    def __init__(self, make_session: sessionmaker[Session], state: SharedState, ttl: float):
        self._make_session = make_session
        self._state = state
        self._ttl = ttl
        self._entries: dict[str, tuple[Client | None, float]] = {}
        self._epoch: bytes | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def get(self, client_id: str) -> Client | None:
        if not storable(client_id):
            return None
        now = time.monotonic()
        self._refresh_epoch(now)
        entry = self._entries.get(client_id)
        if entry is not None and now - entry[1] < self._ttl:
            return entry[0]
        with self._make_session() as db:
            client = db.get(Client, client_id)
            if client is not None:
                db.expunge(client)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[client_id] = (client, now)
        return client

    def invalidate(self, client_id: str | None = None) -> None:
        """Forget one client (or all) here, and tell every other worker."""
        with self._lock:
            if client_id is None:
                self._entries.clear()
            else:
                self._entries.pop(client_id, None)
        self._state.bump_epoch("clients")

    def _refresh_epoch(self, now: float) -> None:
        if self._state.redis is None or now - self._checked < self.EPOCH_CHECK:
            return
        self._checked = now
        epoch = self._state.epoch("clients")
        if epoch != self._epoch:
            self._epoch = epoch
            self._entries.clear()
