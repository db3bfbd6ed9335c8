"""Tessera: an OpenID Connect Provider and OAuth 2.1 authorization server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import ConfigError, load_config


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app: config, database, shared state, keys, sessions, limits, blueprints."""
    from app import cli, db, sessions, web
    from app.discovery import metadata
    from app.extensions import Provider, csrf, limiter
    from app.fastpath import BackChannelFastPath, StaticDocuments
    from app.keys import KeyStore
    from app.oauth.claims import OIDC_SCOPES
    from app.oauth.client_auth import ClientJwks
    from app.oauth.tokens import Lifetimes, TokenIssuer
    from app.security import Passwords
    from app.state import SharedState
    from app.store import ClientCache
    from app.views import BLUEPRINTS

    cfg = load_config(overrides)
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.update(cfg)
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024
    logging.basicConfig(
        level=cfg["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    db.init_app(app)
    redis_client = _redis(cfg["REDIS_URL"])
    make_session = app.extensions["db_sessionmaker"]
    state = SharedState(redis_client, make_session)
    keys = KeyStore.from_dir(cfg["KEYS_DIR"])
    _require_keys(app, keys)
    issuer = cfg["ISSUER"]
    lifetimes = Lifetimes(
        cfg["ACCESS_TOKEN_TTL"], cfg["ID_TOKEN_TTL"], cfg["REFRESH_TOKEN_TTL"], cfg["AUTH_CODE_TTL"]
    )
    cache_ttl = 300 if redis_client is not None else cfg["CLIENT_CACHE_SECONDS"]
    app.extensions["tessera"] = Provider(
        issuer=issuer,
        keys=keys,
        tokens=TokenIssuer(issuer, keys, lifetimes, audience=issuer),
        passwords=Passwords(
            cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_TIME_COST"], cfg["ARGON2_PARALLELISM"]
        ),
        state=state,
        clients=ClientCache(make_session, state, cache_ttl),
        client_jwks=ClientJwks(cfg["JWKS_FETCH_TIMEOUT"], allow_http=not cfg["PRODUCTION"]),
        make_session=make_session,
        redis=redis_client,
        known_scopes=set(OIDC_SCOPES) | set(cfg["API_SCOPES"]),
        config=cfg,
    )

    sessions.init_app(app, redis_client)
    csrf.init_app(app)
    app.config["RATELIMIT_STORAGE_URI"] = cfg["REDIS_URL"] or "memory://"
    app.config["RATELIMIT_KEY_PREFIX"] = "tessera-limits"
    limiter.init_app(app)
    # Every limit is a decorator on its view (login, token, register), checked by the
    # decorator itself; with no default or application limits, the before-request
    # check that Flask-Limiter adds to every request has nothing to do.
    checks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in checks:
        checks.remove(limiter._check_request_limit)
    web.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    cli.init_app(app)

    if cfg["PROXY_HOPS"]:
        hops = cfg["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    discovery = json.dumps(metadata(app.extensions["tessera"])).encode()
    static_headers = web.static_security_headers(issuer.startswith("https://"))
    # Sessions are opened and saved outside Flask's error handlers: a database or Redis
    # outage there must still answer 503, not a bare 500.
    app.wsgi_app = web.OutageGuard(app.wsgi_app, static_headers)  # type: ignore[method-assign]
    allowance = _token_allowance(cfg, limiter)
    app.extensions["tessera_token_allowance"] = allowance  # the view answers what it refuses
    app.wsgi_app = BackChannelFastPath(  # type: ignore[method-assign]
        app.wsgi_app, app.extensions["tessera"], allowance, static_headers
    )
    app.wsgi_app = StaticDocuments(  # type: ignore[method-assign]
        app.wsgi_app,
        {
            "/.well-known/openid-configuration": discovery,
            "/.well-known/oauth-authorization-server": discovery,
            "/jwks.json": keys.jwks_bytes,
        },
        static_headers,
    )
    return app


def _token_allowance(cfg: dict, limiter) -> Callable[[str], bool]:
    """The per-client token limit for the fast path, in Flask-Limiter's storage."""
    if not cfg["RATELIMIT_ENABLED"]:
        return lambda _client_id: True
    from limits import parse

    from app.fastpath import BatchedLimit

    return BatchedLimit(parse(cfg["RATELIMIT_TOKEN"]), lambda: limiter.storage)


def _redis(url: str | None):
    if not url:
        return None
    import redis

    return redis.Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
    )


def _require_keys(app: Flask, keys) -> None:
    """Production refuses to serve without a signing key; the CLI may run to create one."""
    if keys.keys:
        return
    if click.get_current_context(silent=True) is not None:
        return  # the CLI may run without a key: `flask keys generate` creates one
    if app.config["PRODUCTION"]:
        raise ConfigError(
            f"no signing key in {app.config['KEYS_DIR']}: run `flask keys generate` or set KEYS_DIR"
        )
    app.logger.warning("no signing key in %s: run `flask keys generate`", app.config["KEYS_DIR"])
