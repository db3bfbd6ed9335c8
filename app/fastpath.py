"""A WSGI fast path for the documents every client fetches: discovery and JWKS.

They are computed once per process as bytes with an ETag and served before Flask
routing, which is what makes them cost close to nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]


class StaticDocuments:
    def __init__(self, wsgi_app: Any, documents: dict[str, bytes], headers: list[tuple[str, str]]):
        self.wsgi_app = wsgi_app
        self.responses: dict[str, tuple[bytes, list[tuple[str, str]], str]] = {}
        for path, body in documents.items():
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            self.responses[path] = (
                body,
                [
                    ("Content-Type", "application/json"),
                    ("Cache-Control", "public, max-age=300"),
                    ("Access-Control-Allow-Origin", "*"),
                    ("ETag", etag),
                    *headers,
                ],
                etag,
            )

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        hit = self.responses.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        if hit is None or method not in ("GET", "HEAD"):
            return self.wsgi_app(environ, start_response)
        body, headers, etag = hit
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            start_response("304 Not Modified", headers)
            return [b""]
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body] if method == "GET" else [b""]


class BackChannelFastPath:
    """POST /token (client_credentials) and POST /introspect (JWTs), before Flask.

    These are the requests backends make most, and signing or verifying should be
    nearly all of their cost. The same protocol code as the views runs here (client
    authentication, the client_credentials grant, introspection), and only success is
    answered; anything else (another grant, a client assertion, a refresh token, a
    CORS request, any error, a rate limit reached) goes to the Flask view with the body
    intact, which answers it in full.
    """

    MAX_BODY = 4096

    def __init__(
        self,
        wsgi_app: Any,
        provider: Any,
        allow: Callable[[str], bool],
        headers: list[tuple[str, str]],
    ):
        self.wsgi_app = wsgi_app
        self.provider = provider
        self.allow = allow
        self.handlers = {"/token": self._token, "/introspect": self._introspect}
        self.headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
            *headers,
        ]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        handler = self.handlers.get(environ.get("PATH_INFO", ""))
        if (
            handler is None
            or environ.get("REQUEST_METHOD") != "POST"
            or "HTTP_ORIGIN" in environ
            or not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        ):
            return self.wsgi_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if not 0 < length <= self.MAX_BODY:
            return self.wsgi_app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        response = self._answer(handler, environ, body)
        if response is None:
            environ["wsgi.input"] = io.BytesIO(body)  # Flask reads the same body again
            return self.wsgi_app(environ, start_response)
        start_response("200 OK", [*self.headers, ("Content-Length", str(len(response)))])
        return [response]

    def _answer(self, handler: Callable, environ: dict[str, Any], body: bytes) -> bytes | None:
        from app.oauth.client_auth import authenticate_client
        from app.oauth.errors import OAuthError
        from app.oauth.params import Params
        from app.views.token import auth_context

        try:
            params = Params.from_urlencoded(body)
            if params.get("client_assertion") or params.get("client_assertion_type"):
                return None  # single-use assertions must be checked exactly once
            client = authenticate_client(
                environ.get("HTTP_AUTHORIZATION"),
                params,
                auth_context(self.provider, environ["PATH_INFO"]),
            )
            result = handler(client, params)
        except OAuthError:
            return None
        except Exception:  # noqa: BLE001 - e.g. the database is down: Flask answers it properly
            return None
        return None if result is None else json.dumps(result, separators=(",", ":")).encode()

    def _token(self, client: Any, params: Any) -> dict[str, Any] | None:
        from app import events
        from app.oauth.grants import GrantContext, client_credentials

        if params.get("grant_type") != client_credentials.GRANT_TYPE or not self.allow(client.id):
            return None
        p = self.provider
        ctx = GrantContext(
            open_db=p.make_session,
            tokens=p.tokens,
            state=p.state,
            refresh_grace=p.config["REFRESH_REUSE_GRACE"],
            now=int(time.time()),
            event=events.record,
        )
        try:
            return client_credentials.handle(ctx, client, params)
        finally:
            if ctx.used_db:
                ctx.db.close()

    def _introspect(self, client: Any, params: Any) -> dict[str, Any] | None:
        from app.oauth.introspection import introspect_jwt

        token = params.get("token")
        params.get("token_type_hint")  # single-valued, like every parameter
        if client.is_public or token is None or token.count(".") != 2:
            return None
        p = self.provider
        return introspect_jwt(p.tokens, p.state, client, token)


class BatchedLimit:
    """A fixed-window limit per key, counted in the shared storage in batches.

    Each process counts locally and adds its count to the shared window (Redis when
    configured) every ``batch`` hits or ``flush_seconds``, so a request costs no
    round trip; the shared total may overshoot by at most ``batch`` per process.
    Storage trouble returns False: the Flask view then applies its own limit.
    """

    def __init__(
        self, item: Any, storage: Callable[[], Any], batch: int = 16, flush_seconds: float = 0.1
    ):
        self.limit = item.amount
        self.period = item.get_expiry()
        self.storage = storage
        self.batch = batch
        self.flush_seconds = flush_seconds
        # key -> [window, pending hits, shared total seen, last flush time]
        self.counts: dict[str, list[float]] = {}

    def __call__(self, key: str) -> bool:
        now = time.time()
        window = int(now // self.period)
        entry = self.counts.get(key)
        if entry is None or entry[0] != window:
            if len(self.counts) > 10_000:
                self.counts.clear()
            entry = self.counts[key] = [window, 0, 0, now]
        if entry[2] >= self.limit:
            return False
        entry[1] += 1
        if entry[1] >= self.batch or now - entry[3] >= self.flush_seconds or entry[2] == 0:
            try:
                total = self.storage().incr(
                    f"tessera-limits/token-fastpath/{key}/{window}",
                    self.period,
                    amount=int(entry[1]),
                )
            except Exception:  # noqa: BLE001 - see the class docstring
                return False
            entry[1], entry[2], entry[3] = 0, total, now
        return entry[2] + entry[1] <= self.limit

    def exceeded(self, key: str) -> int | None:
        """Seconds to wait if ``key`` went over its limit in this window, else None.

        A request the fast path refused for its limit reaches the Flask view, which
        asks this (the two paths count apart, so the view's own limit has not seen it).
        """
        now = time.time()
        window = int(now // self.period)
        entry = self.counts.get(key)
        if entry is None or entry[0] != window:
            return None
        if entry[2] < self.limit and entry[2] + entry[1] <= self.limit:
            return None
        return max(1, math.ceil((window + 1) * self.period - now))
