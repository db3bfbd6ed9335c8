"""The one place OAuth errors become responses, plus security headers for every response.

An error is rendered as a redirect to the client (``error``, ``state``, ``iss``) when
its redirect URI was verified, an HTML page when it was not or for browser pages,
and RFC 6749 §5.2 JSON otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.oauth.errors import OAuthError, UntrustedRedirect
from app.oauth.params import Params

log = logging.getLogger("tessera")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
HTML_BLUEPRINTS = {"authorize", "login", "consent"}  # pages a person sees in a browser


def params_from(source: Any) -> Params:
    return Params.from_multidict(source)


def json_response(data: dict[str, Any], status: int = 200, **headers: str) -> Response:
    resp = jsonify(data)
    resp.status_code = status
    resp.headers.update(NO_STORE)
    resp.headers.update(headers)
    return resp


def authorization_response(
    redirect_uri: str, mode: str, params: dict[str, str | None], issuer: str
) -> Response:
    """Deliver a code or an error to the client: query or form_post, always with iss."""
    values = {k: v for k, v in params.items() if v is not None}
    values["iss"] = issuer  # RFC 9207
    if mode == "form_post":
        g.csp_nonce = secrets.token_urlsafe(16)
        html = render_template("form_post.html", action=redirect_uri, values=values)
        return Response(html, 200, {"Content-Type": "text/html; charset=utf-8", **NO_STORE})
    parts = urlsplit(redirect_uri)
    query = (parts.query + "&" if parts.query else "") + urlencode(values)
    resp = Response(status=302, headers=NO_STORE)
    resp.headers["Location"] = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return resp


def error_page(status: int, title: str, message: str) -> Response:
    html = render_template("error.html", title=title, message=message)
    return Response(html, status, {"Content-Type": "text/html; charset=utf-8", **NO_STORE})


def render_oauth_error(exc: OAuthError) -> Response:
    from app.extensions import provider

    if exc.detail:
        log.info("oauth error %s: %s (%s)", exc.error, exc.description, exc.detail)
    target = getattr(exc, "redirect", None)
    if target is not None:
        return authorization_response(
            target.redirect_uri,
            target.response_mode,
            {"error": exc.error, "error_description": exc.description, "state": target.state},
            provider().issuer,
        )
    if isinstance(exc, UntrustedRedirect) or request.blueprint in HTML_BLUEPRINTS:
        return error_page(400, "This sign-in request cannot be completed", exc.description)
    return json_response(exc.body(), exc.status, **exc.headers)


def _wants_html() -> bool:
    return request.blueprint in HTML_BLUEPRINTS or (
        request.blueprint is None and ("text/html" in request.headers.get("Accept", ""))
    )


def render_http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    if isinstance(exc, RateLimitExceeded):
        error, description = "temporarily_unavailable", "Too many requests; retry later."
    elif code == 405:
        error, description = "invalid_request", "Method not allowed."
    elif code == 404:
        error, description = "invalid_request", "Not found."
    elif code == 413:
        error, description = "invalid_request", "The request is too large."
    elif code < 500:
        error, description = "invalid_request", "The request is malformed."
    else:
        error, description = "server_error", "The server met an unexpected condition."
    if _wants_html():
        resp = error_page(code, exc.name, description)
    else:
        resp = json_response({"error": error, "error_description": description}, code)
    if isinstance(exc, RateLimitExceeded):
        resp.headers["Retry-After"] = str(_retry_after())
    if code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return resp


def _retry_after() -> int:
    from app.extensions import limiter

    current = limiter.current_limit
    reset = current.reset_at if current is not None else time.time() + 1
    return max(1, math.ceil(reset - time.time()))


def render_unexpected(exc: Exception) -> Response:
    if _is_backend_outage(exc):
        # The database or Redis is down or restarting: say so, and when to retry.
        log.warning("backend unavailable on %s %s: %s", request.method, request.path, exc)
        if _wants_html():
            resp = error_page(503, "Temporarily unavailable", "Please try again in a moment.")
        else:
            resp = json_response(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "The service is briefly unavailable; retry shortly.",
                },
                503,
            )
        resp.headers["Retry-After"] = "1"
        return resp
    log.exception("unhandled error on %s %s", request.method, request.path)
    if _wants_html():
        return error_page(500, "Something went wrong", "Please try again.")
    return json_response(
        {"error": "server_error", "error_description": "The server met an unexpected condition."},
        500,
    )


# Browser-based (public) clients call these cross-origin with bearer tokens, never cookies.
CORS_ENDPOINTS = {"token.token", "userinfo.userinfo", "introspect.revoke"}


def cors_headers(resp: Response) -> Response:
    if request.endpoint in CORS_ENDPOINTS and "Origin" in request.headers:
        resp.headers["Access-Control-Allow-Origin"] = "*"
        if request.method == "OPTIONS":
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST"
            resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            resp.headers["Access-Control-Max-Age"] = "600"
        else:
            resp.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate, Retry-After"
    return resp


def security_headers(resp: Response) -> Response:
    nonce = g.get("csp_nonce")
    script = f"'nonce-{nonce}'" if nonce else "'self'"
    headers = resp.headers
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data: https:; style-src 'self'; "
        f"script-src {script}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    )
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if current_app.config["HSTS"]:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if resp.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return resp


def static_security_headers(https: bool) -> list[tuple[str, str]]:
    """The same headers, for responses served before Flask (see fastpath)."""
    out = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ]
    if https:
        out.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return out


def init_app(app: Flask) -> None:
    app.config["HSTS"] = app.config["ISSUER"].startswith("https://")
    app.register_error_handler(OAuthError, render_oauth_error)
    app.register_error_handler(
        CSRFError,
        lambda e: error_page(
            400, "This form has expired", "Please go back, reload the page and try again."
        ),
    )
    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(Exception, render_unexpected)
    app.after_request(security_headers)
    app.after_request(cors_headers)


def _is_backend_outage(exc: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    outage = (RedisConnectionError, RedisTimeoutError, PoolTimeoutError, OperationalError)
    if isinstance(exc, outage):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class OutageGuard:
    """WSGI wrapper: a backend outage raised outside Flask's handlers becomes a 503."""

    def __init__(self, wsgi_app: Any, headers: list[tuple[str, str]]):
        self.wsgi_app = wsgi_app
        self.headers = headers

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return self.wsgi_app(environ, start_response)
        except Exception as exc:
            if not _is_backend_outage(exc):
                raise
            log.warning("backend unavailable on %s: %s", environ.get("PATH_INFO"), exc)
            if "text/html" in environ.get("HTTP_ACCEPT", ""):
                body = OUTAGE_PAGE
                kind = "text/html; charset=utf-8"
            else:
                body = OUTAGE_JSON
                kind = "application/json"
            start_response(
                "503 Service Unavailable",
                [
                    ("Content-Type", kind),
                    ("Content-Length", str(len(body))),
                    ("Retry-After", "1"),
                    ("Cache-Control", "no-store"),
                    *self.headers,
                ],
            )
            return [body]


OUTAGE_JSON = json.dumps(
    {
        "error": "temporarily_unavailable",
        "error_description": "The service is briefly unavailable; retry shortly.",
    }
).encode()
OUTAGE_PAGE = (
    b"<!doctype html><title>Temporarily unavailable</title>"
    b"<h1>Temporarily unavailable</h1><p>Please try again in a moment.</p>"
)
