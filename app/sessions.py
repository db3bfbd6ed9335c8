"""Server-side browser sessions: the cookie holds only a random id.

Data lives in Redis (with a TTL) when REDIS_URL is set, otherwise in the database.
Stored under the id's SHA-256 digest, so a leaked store does not leak cookies.
``session.rotate()`` gives the session a new id (at sign-in: no session fixation).
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete
from werkzeug.datastructures import CallbackDict

from app.models import WebSession
from app.security import digest, random_token

REDIS_PREFIX = "tessera:session:"


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, data: dict[str, Any] | None = None, sid: str | None = None):
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.sid = sid
        self.modified = False
        self.old_sid: str | None = None

    def rotate(self) -> None:
        """New id for the same data; the old id is deleted on save."""
        if self.sid is not None and self.old_sid is None:
            self.old_sid = self.sid
        self.sid = None
        self.modified = True


class ServerSessionInterface(SessionInterface):
    def __init__(self, redis_client: Any | None, make_session: Any, ttl: int, secure: bool):
        self.redis = redis_client
        self.make_session = make_session
        self.ttl = ttl
        self.secure = secure
        self.cookie_name = "__Host-tessera" if secure else "tessera_session"

    # storage -------------------------------------------------------------
    def _load(self, sid: str) -> dict[str, Any] | None:
        key = digest(sid)
        if self.redis is not None:
            raw = self.redis.get(REDIS_PREFIX + key)
        else:
            with self.make_session() as db:
                row = db.get(WebSession, key)
                raw = row.data if row is not None and row.expires_at > time.time() else None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _store(self, sid: str, data: dict[str, Any]) -> None:
        key, raw = digest(sid), json.dumps(data, separators=(",", ":"))
        if self.redis is not None:
            self.redis.set(REDIS_PREFIX + key, raw, ex=self.ttl)
            return
        with self.make_session() as db:
            row = db.get(WebSession, key) or WebSession(id=key)
            row.data, row.expires_at = raw, int(time.time()) + self.ttl
            db.add(row)
            db.commit()

    def _delete(self, sid: str) -> None:
        key = digest(sid)
        if self.redis is not None:
            self.redis.delete(REDIS_PREFIX + key)
            return
        with self.make_session() as db:
            db.execute(delete(WebSession).where(WebSession.id == key))
            db.commit()

    # Flask's interface ---------------------------------------------------
    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.cookie_name)
        if sid and 20 <= len(sid) <= 64:
            data = self._load(sid)
            if data is not None:
                return ServerSession(data, sid)
        return ServerSession()

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:  # type: ignore[override]
        if session.old_sid:
            self._delete(session.old_sid)
        if not session:
            if session.sid is not None and session.modified:
                self._delete(session.sid)
                response.delete_cookie(self.cookie_name, path="/", secure=self.secure)
            return
        if not session.modified and session.sid is not None:
            return
        if session.sid is None:
            session.sid = random_token(32)
        self._store(session.sid, dict(session))
        response.set_cookie(
            self.cookie_name,
            session.sid,
            max_age=self.ttl,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )
        response.vary.add("Cookie")


def init_app(app: Flask, redis_client: Any | None) -> None:
    secure = app.config["ISSUER"].startswith("https://")
    app.session_interface = ServerSessionInterface(
        redis_client, app.extensions["db_sessionmaker"], app.config["SESSION_TTL"], secure
    )
