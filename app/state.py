"""State shared by every worker and instance: deny-list, single-use markers, cache epochs.

Redis when REDIS_URL is set; otherwise the database, so a single host needs no
extra service. Nothing here lives only in one process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.models import OneTimeKey, RevokedJti

PREFIX = "tessera:"
log = logging.getLogger("tessera")


class SharedState:
    def __init__(self, redis_client: Any | None, make_session: sessionmaker[Session]):
        self.redis = redis_client
        self._make_session = make_session
        self.denied = DenyMirror(redis_client) if redis_client is not None else None

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
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(PREFIX + "deny:" + jti, b"1", ex=ttl)
            pipe.publish(DenyMirror.CHANNEL, f"{jti} {expires_at}")
            pipe.execute()
            self.denied.add(jti, expires_at)  # type: ignore[union-attr]
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
            answer = self.denied.lookup(jti)  # type: ignore[union-attr]
            if answer is not None:
                return answer
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


class DenyMirror:
    """This process's copy of the shared deny-list, kept current over Redis pub/sub.

    Introspection and userinfo check the deny-list on every call; a dict lookup spares
    them a Redis round trip. The copy is trusted only while it is complete: a thread
    subscribes first, then loads every deny key, and from then on applies each
    published revocation. Until that is done, and from the moment the subscription
    fails or stops answering pings, ``lookup`` answers None and the caller asks Redis.
    A revocation reaches the other workers as fast as Redis delivers the message
    (milliseconds); the worker that revoked sees it at once.
    """

    CHANNEL = PREFIX + "denied"
    MAX_ENTRIES = 500_000
    PING_EVERY = 2.0

    def __init__(self, redis_client: Any):
        self.redis = redis_client
        self.entries: dict[str, float] = {}
        self.ready = False
        self._pid: int | None = None
        self._lock = threading.Lock()

    def lookup(self, jti: str) -> bool | None:
        """True or False from the copy, or None when only Redis can say."""
        if self._pid != os.getpid():
            self._start()
        if not self.ready:
            return None
        expires_at = self.entries.get(jti)
        return expires_at is not None and expires_at > time.time()

    def add(self, jti: str, expires_at: float) -> None:
        self.entries[jti] = expires_at

    def _start(self) -> None:
        """One thread per process, started in the process that uses it (after fork)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.ready = False
            self.entries = {}
            threading.Thread(target=self._run, name="tessera-deny-mirror", daemon=True).start()

    def _run(self) -> None:
        while True:
            pubsub = self.redis.pubsub()
            try:
                self._follow(pubsub)
            except Exception as exc:  # noqa: BLE001 - any failure: fall back, then resync
                log.warning("deny-list mirror lost its subscription: %s", exc)
            finally:
                self.ready = False
                with contextlib.suppress(Exception):
                    pubsub.close()
            time.sleep(1.0)

    def _follow(self, pubsub: Any) -> None:
        pubsub.subscribe(self.CHANNEL)
        deadline = time.monotonic() + 5
        while True:  # the subscription must be in place before the copy is loaded
            message = pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "subscribe":
                break
            if time.monotonic() > deadline:
                raise TimeoutError("no subscribe confirmation")
        self._load()
        self.ready = True
        last_pong = last_ping = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=self.PING_EVERY / 2)
            now = time.monotonic()
            if message is not None:
                if message["type"] == "message":
                    self._apply(message["data"])
                elif message["type"] == "pong":
                    last_pong = now
            if now - last_ping >= self.PING_EVERY:
                pubsub.ping()
                last_ping = now
                self._prune()
            if now - last_pong > 3 * self.PING_EVERY:
                raise TimeoutError("the subscription stopped answering pings")

    def _load(self) -> None:
        entries: dict[str, float] = {}
        now = time.time()
        keys = list(self.redis.scan_iter(match=PREFIX + "deny:*", count=1000))
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            pipe = self.redis.pipeline(transaction=False)
            for key in batch:
                pipe.ttl(key)
            for key, ttl in zip(batch, pipe.execute(), strict=True):
                if ttl and ttl > 0:
                    jti = key.decode() if isinstance(key, bytes) else key
                    entries[jti.removeprefix(PREFIX + "deny:")] = now + ttl
        # revocations applied while loading stay: merge, keeping both
        self.entries = {**entries, **self.entries}

    def _apply(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        jti, _, expires_at = text.rpartition(" ")
        with contextlib.suppress(ValueError):
            self.entries[jti] = float(expires_at)

    def _prune(self) -> None:
        now = time.time()
        if len(self.entries) > 1000:
            items = list(self.entries.items())  # a snapshot: request threads may add
            self.entries = {k: v for k, v in items if v > now}
        if len(self.entries) > self.MAX_ENTRIES:
            raise OverflowError("too many revocations to mirror; asking Redis instead")
