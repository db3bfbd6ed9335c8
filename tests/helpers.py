"""Small helpers that speak the protocol: users, clients, PKCE, forms, error checks."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from app.cli import create_client, upgrade_database
from app.models import User

PASSWORD = "correct horse battery staple"
REDIRECT = "http://127.0.0.1:9/cb"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def assert_oauth_error(resp: Any, error: str, status: int = 400) -> dict:
    """An RFC 6749 §5.2 JSON error with the exact code, and no caching."""
    assert resp.status_code == status, (resp.status_code, _text(resp))
    body = resp.json() if hasattr(resp, "json") and callable(resp.json) else resp.get_json()
    assert body["error"] == error, body
    assert isinstance(body.get("error_description"), str)
    assert resp.headers.get("Cache-Control") == "no-store"
    if status == 401:  # RFC 7235 §3.1: every 401 carries a challenge
        assert resp.headers.get("WWW-Authenticate"), resp.headers
    return body


def assert_redirect_error(resp: Any, error: str, state: str | None, issuer: str) -> dict:
    """An authorization error sent back to the client with state and iss (RFC 9207)."""
    assert resp.status_code == 302, (resp.status_code, _text(resp))
    query = redirect_params(resp)
    assert query["error"] == error, query
    assert query.get("state") == state
    assert query["iss"] == issuer
    return query


def redirect_params(resp: Any) -> dict[str, str]:
    location = resp.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _text(resp: Any) -> str:
    return resp.text if hasattr(resp, "text") else resp.get_data(as_text=True)


def form_fields(html: str) -> dict[str, str]:
    """The hidden and pre-filled inputs of the first form on a page."""
    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[unescape(name.group(1))] = unescape(value.group(1)) if value else ""
    return fields


@dataclass
class Harness:
    app: Flask
    base_url: str

    @property
    def issuer(self) -> str:
        return self.base_url

    def url(self, path: str) -> str:
        return self.base_url + path

    def create_user(self, password: str = PASSWORD, **fields: Any) -> User:
        from app.db import get_db
        from app.extensions import provider

        suffix = secrets.token_hex(4)
        with self.app.app_context():
            user = User(
                username=fields.pop("username", f"user{suffix}"),
                email=fields.pop("email", f"user{suffix}@example.com"),
                email_verified=True,
                name="Test User",
                given_name="Test",
                family_name="User",
                password_hash=provider().passwords.hash(password),
                **fields,
            )
            db = get_db()
            db.add(user)
            db.commit()
            return user

    def create_client(self, **kw: Any) -> tuple[str, str | None]:
        with self.app.app_context():
            client, secret = create_client(
                kw.pop("name", "test client"),
                kw.pop("redirect_uris", [REDIRECT]),
                kw.pop(
                    "grant_types", ["authorization_code", "refresh_token", "client_credentials"]
                ),
                kw.pop("auth_method", "client_secret_basic"),
                kw.pop("scope", "openid profile email address phone offline_access"),
                kw.pop("first_party", False),
                kw.pop("require_pkce", True),
            )
            return client.id, secret

    def authorize_params(self, client_id: str, challenge: str | None, **extra: str) -> dict:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": "openid profile email",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
        }
        if challenge:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    def sign_in(
        self,
        browser: requests.Session,
        user: User,
        params: dict,
        password: str = PASSWORD,
        consent: str | None = "allow",
    ) -> requests.Response:
        """Drive /authorize → login form → consent form; returns the final response."""
        resp = browser.get(self.url("/authorize?" + urlencode(params)), allow_redirects=False)
        for _ in range(6):
            if resp.status_code != 302:
                return resp
            location = urljoin(resp.url, resp.headers["Location"])
            if not location.startswith(self.base_url):
                return resp
            resp = browser.get(location, allow_redirects=False)
            path = urlsplit(resp.url).path
            if path == "/login" and resp.status_code == 200:
                fields = form_fields(resp.text)
                fields.update(username=user.username, password=password)
                resp = browser.post(self.url("/login"), data=fields, allow_redirects=False)
            elif path == "/consent" and resp.status_code == 200 and consent:
                fields = form_fields(resp.text)
                fields["decision"] = consent
                resp = browser.post(self.url("/consent"), data=fields, allow_redirects=False)
        return resp

    def get_code(self, client_id: str, user: User, **extra: str) -> tuple[str, str, dict]:
        """A fresh authorization code with PKCE; returns (code, verifier, params)."""
        verifier, challenge = pkce_pair()
        params = self.authorize_params(client_id, challenge, **extra)
        resp = self.sign_in(requests.Session(), user, params)
        query = redirect_params(resp)
        assert "code" in query, query
        return query["code"], verifier, params

    def exchange(
        self, client_id: str, secret: str | None, code: str, verifier: str | None, **extra: str
    ) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        if verifier:
            data["code_verifier"] = verifier
        data.update(extra)
        auth = (client_id, secret) if secret else None
        if not secret:
            data["client_id"] = client_id
        return requests.post(self.url("/token"), data=data, auth=auth, timeout=10)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


# --- services and apps: imported from here only, so PostgreSQL is reset once per run ---

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


_postgres_reset = False


def database_url(tmp: Path, name: str) -> str:
    """PostgreSQL is emptied once per session; each SQLite app gets its own file."""
    global _postgres_reset
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if not _postgres_reset:
            _reset_postgres(url)
            _postgres_reset = True
        return url
    if REQUIRE:
        pytest.fail("REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set")
    return f"sqlite:///{tmp / name}"


def redis_url() -> str | None:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        import redis

        try:
            redis.Redis.from_url(url).ping()
        except redis.RedisError as exc:
            pytest.fail(f"TEST_REDIS_URL is set but Redis is unreachable: {exc}")
    elif REQUIRE:
        pytest.fail("REQUIRE_SERVICES=1 but TEST_REDIS_URL is not set")
    return url


def build_app(tmp: Path, keys_dir: Path, port: int, **overrides):
    url = database_url(tmp, "tessera.db")
    upgrade_database(url)
    os.environ["TESSERA_ENV"] = "testing"
    cfg = {
        "ISSUER": f"http://127.0.0.1:{port}",
        "DATABASE_URL": url,
        "REDIS_URL": redis_url(),
        "KEYS_DIR": str(keys_dir),
        "ARGON2_MEMORY_KIB": 1024,  # fast hashing in tests; parameters are checked apart
        "ARGON2_TIME_COST": 1,
        "RATELIMIT_TOKEN": "10000 per second",
        "RATELIMIT_LOGIN": "1000 per minute",
        "RATELIMIT_REGISTER": "1000 per minute",
        **overrides,
    }
    return create_app(cfg)


@contextmanager
def serve(tmp: Path, keys_dir: Path, **overrides: Any) -> Iterator[Harness]:
    """A migrated app with these settings, served over real HTTP on its own port."""
    port = free_port()
    app = build_app(tmp, keys_dir, port, **overrides)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Harness(app, f"http://127.0.0.1:{port}")
    finally:
        server.shutdown()
