"""State shared by every worker and instance: deny-list, single-use markers, cache epochs.

Redis when REDIS_URL is set; otherwise the database, so a single host needs no
extra service. Nothing here lives only in one process.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.models import OneTimeKey, RevokedJti

PREFIX = "tessera:"


class SharedState:
    def __init__(self, redis_client: Any | None, make_session: sessionmaker[Session]):
        self.redis = redis_client
        self._make_session = make_session

    def claim_once(self, key: str, ttl: int) -> bool:
        """True the first time ``key`` is claimed within ``ttl`` seconds, False after."""
        if self.redis is not None:
            return bool(self.redis.set(PREFIX + "once:" + key, b"1", nx=True, ex=max(ttl, 1)))
        now = int(time.time())
        with self._make_session() as db:
            db.execute(
                delete(OneTimeKey).where(OneTimeKey.key == key, OneTimeKey.expires_at <= now)
            )
            db.add(OneTimeKey(key=key, expires_at=now + max(ttl, 1)))
            try:
                db.commit()
            except IntegrityError:
                return False
        return True

    def deny(self, jti: str, expires_at: int, db: Session | None = None) -> None:
        """Put a JWT id on the deny-list until the token would have expired anyway.

        Without Redis, pass the caller's ``db`` to write in its transaction (which it
        commits); SQLite would otherwise deadlock against the caller's open write.
        """
        ttl = expires_at - int(time.time())
        if ttl <= 0:
            return
        if self.redis is not None:
            self.redis.set(PREFIX + "deny:" + jti, b"1", ex=ttl)
            return
        if db is not None:
            db.merge(RevokedJti(jti=jti, expires_at=expires_at))
            return
        with self._make_session() as db:
            if db.get(RevokedJti, jti) is None:
                db.add(RevokedJti(jti=jti, expires_at=expires_at))
                with contextlib.suppress(IntegrityError):
                    db.commit()

    def is_denied(self, jti: str) -> bool:
        if self.redis is not None:
            return bool(self.redis.exists(PREFIX + "deny:" + jti))
        with self._make_session() as db:
            return db.scalar(select(RevokedJti.jti).where(RevokedJti.jti == jti)) is not None

    def epoch(self, name: str) -> bytes | None:
        """A counter bumped on every change of ``name`` (e.g. clients); None without Redis."""
        if self.redis is None:
            return None
        return self.redis.get(PREFIX + "epoch:" + name)

    def bump_epoch(self, name: str) -> None:
        if self.redis is not None:
            self.redis.incr(PREFIX + "epoch:" + name)

    def ping(self) -> bool:
        return self.redis is None or bool(self.redis.ping())
