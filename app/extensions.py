"""Process-wide objects, created once in ``create_app`` and reached through ``provider()``."""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect
from sqlalchemy.orm import Session, sessionmaker

from app.keys import KeyStore
from app.oauth.client_auth import ClientJwks
from app.oauth.errors import OAuthError
from app.oauth.params import Params
from app.oauth.tokens import TokenIssuer
from app.security import Passwords
from app.state import SharedState
from app.store import ClientCache

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, swallow_errors=True, in_memory_fallback_enabled=True)


@dataclass
class Provider:
    """Everything a request needs that is built once per process."""

    issuer: str
    keys: KeyStore
    tokens: TokenIssuer
    passwords: Passwords
    state: SharedState
    clients: ClientCache
    client_jwks: ClientJwks
    make_session: sessionmaker[Session]
    redis: Any | None
    known_scopes: set[str]
    config: dict[str, Any]

    def url(self, path: str) -> str:
        return self.issuer + path


def provider() -> Provider:
    return current_app.extensions["tessera"]


def client_id_key() -> str:
    """Rate-limit key for the token endpoint: the client, however it authenticates."""
    auth = request.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            return "client:" + unquote_plus(decoded.partition(":")[0])[:128]
        except (ValueError, UnicodeDecodeError):
            pass
    client_id = None
    if request.mimetype == "application/x-www-form-urlencoded":
        # get_data(cache=True), not request.form: the view reads the same cached body.
        body = request.get_data(cache=True)
        with contextlib.suppress(OAuthError):
            client_id = Params.from_urlencoded(body).get("client_id")
    return "client:" + client_id[:128] if client_id else "ip:" + get_remote_address()


def login_account_key() -> str:
    """Rate-limit key for password attempts against one account."""
    return "account:" + (request.form.get("username") or "").strip().lower()[:254]
