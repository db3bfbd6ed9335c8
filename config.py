"""Tessera configuration: every setting is read once, from the environment.

Each setting says what it does, its default and why. ``load_config()`` returns a
plain dict that ``create_app`` hands to Flask; nothing reads ``os.environ`` later.
Production refuses insecure values with a one-line message saying what to set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message says what to set."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    doc: str


# The documented table (README "Configuration" is generated from the same words).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "TESSERA_ENV",
        "development",
        "`development`, `production` or `testing`. Production refuses unsafe values.",
    ),
    Setting(
        "SECRET_KEY",
        "random per process (development)",
        "Signs CSRF tokens. Required in production.",
    ),
    Setting(
        "ISSUER",
        "http://HOST:PORT",
        "The issuer identifier: every URL and token's `iss`. Must be https in production.",
    ),
    Setting(
        "HOST / PORT",
        "127.0.0.1 / 5000",
        "Where `make run` serves; the default issuer follows them.",
    ),
    Setting(
        "DATABASE_URL",
        "sqlite:///instance/tessera.db",
        "SQLAlchemy URL; use `postgresql+psycopg://...` in production.",
    ),
    Setting("DATABASE_POOL_SIZE", "10", "Pooled connections per process (PostgreSQL)."),
    Setting(
        "REDIS_URL",
        "unset",
        "Sessions, rate limits, one-time state and the deny-list. "
        "Unset: the database holds them (zero setup, one host).",
    ),
    Setting(
        "KEYS_DIR", "keys/", "Folder of PEM signing keys; the newest signs, all are published."
    ),
    Setting(
        "API_SCOPES",
        "unset",
        "Extra scopes (space-separated) clients may request for "
        "your APIs, besides the OpenID Connect ones.",
    ),
    Setting("ACCESS_TOKEN_TTL", "600", "Access token lifetime, seconds."),
    Setting("ID_TOKEN_TTL", "600", "ID token lifetime, seconds."),
    Setting("REFRESH_TOKEN_TTL", "1209600", "Refresh token lifetime (14 days), seconds."),
    Setting(
        "REFRESH_REUSE_GRACE",
        "5",
        "Seconds in which a retried, just-rotated refresh "
        "token gets the same successor; 0 = strict reuse detection.",
    ),
    Setting("AUTH_CODE_TTL", "60", "Authorization code lifetime, seconds."),
    Setting("SESSION_TTL", "86400", "Sign-in session lifetime, seconds."),
    Setting(
        "REGISTRATION_POLICY",
        "open (dev) / token (prod)",
        "`open`, `token` (initial access token required) or `closed`.",
    ),
    Setting("RATELIMIT_ENABLED", "1", "Turn rate limits off only for benchmarks."),
    Setting("RATELIMIT_LOGIN", "10 per minute", "Failed login attempts per IP and per account."),
    Setting("RATELIMIT_TOKEN", "1200 per second", "Token requests per client."),
    Setting("RATELIMIT_REGISTER", "20 per hour", "Registrations per IP."),
    Setting("PROXY_HOPS", "0", "How many proxies (nginx) set X-Forwarded-*; 0 trusts none."),
    Setting(
        "CLIENT_CACHE_SECONDS",
        "2",
        "Without Redis, how long a worker trusts its cached "
        "client; with Redis, changes reach every worker within a second.",
    ),
    Setting("JWKS_FETCH_TIMEOUT", "3", "Seconds to wait for a client's jwks_uri."),
    Setting("ARGON2_MEMORY_KIB", "19456", "argon2id memory (OWASP: 19 MiB)."),
    Setting("ARGON2_TIME_COST", "2", "argon2id iterations (OWASP: 2)."),
    Setting("ARGON2_PARALLELISM", "1", "argon2id lanes (OWASP: 1)."),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    Setting(
        "TESSERA_ALLOW_HTTP_ISSUER",
        "0",
        "Lets production use an http issuer on loopback only (benchmarks, smoke tests).",
    ),
)


def _is_loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def load_config(overrides: dict | None = None) -> dict:
    """Read the environment once and return Flask config; raise ConfigError if unsafe."""
    env = (_env("TESSERA_ENV", "development") or "development").lower()
    production = env == "production"
    host = _env("HOST", "127.0.0.1")
    port = _int("PORT", 5000)
    issuer = (_env("ISSUER") or f"http://{host}:{port}").rstrip("/")
    instance = BASE_DIR / "instance"
    cfg: dict = {
        "TESSERA_ENV": env,
        "PRODUCTION": production,
        "TESTING": env == "testing",
        "SECRET_KEY": _env("SECRET_KEY"),
        "ISSUER": issuer,
        "DATABASE_URL": _env("DATABASE_URL", f"sqlite:///{instance / 'tessera.db'}"),
        "DATABASE_POOL_SIZE": _int("DATABASE_POOL_SIZE", 10),
        "REDIS_URL": _env("REDIS_URL"),
        "KEYS_DIR": _env("KEYS_DIR", str(BASE_DIR / "keys")),
        "API_SCOPES": (_env("API_SCOPES") or "").split(),
        "ACCESS_TOKEN_TTL": _int("ACCESS_TOKEN_TTL", 600),
        "ID_TOKEN_TTL": _int("ID_TOKEN_TTL", 600),
        "REFRESH_TOKEN_TTL": _int("REFRESH_TOKEN_TTL", 14 * 24 * 3600),
        "REFRESH_REUSE_GRACE": _int("REFRESH_REUSE_GRACE", 5),
        "AUTH_CODE_TTL": _int("AUTH_CODE_TTL", 60),
        "SESSION_TTL": _int("SESSION_TTL", 24 * 3600),
        "REGISTRATION_POLICY": _env("REGISTRATION_POLICY", "token" if production else "open"),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_LOGIN": _env("RATELIMIT_LOGIN", "10 per minute"),
        "RATELIMIT_TOKEN": _env("RATELIMIT_TOKEN", "1200 per second"),
        "RATELIMIT_REGISTER": _env("RATELIMIT_REGISTER", "20 per hour"),
        "PROXY_HOPS": _int("PROXY_HOPS", 0),
        "CLIENT_CACHE_SECONDS": _int("CLIENT_CACHE_SECONDS", 2),
        "JWKS_FETCH_TIMEOUT": _int("JWKS_FETCH_TIMEOUT", 3),
        "ARGON2_MEMORY_KIB": _int("ARGON2_MEMORY_KIB", 19456),
        "ARGON2_TIME_COST": _int("ARGON2_TIME_COST", 2),
        "ARGON2_PARALLELISM": _int("ARGON2_PARALLELISM", 1),
        "LOG_LEVEL": _env("LOG_LEVEL", "INFO"),
        # Allows an http issuer in production only on loopback (benchmarks, smoke tests).
        "ALLOW_HTTP_ISSUER": _bool("TESSERA_ALLOW_HTTP_ISSUER", False),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        # Under https Flask-WTF would also demand a same-origin Referer, which browsers
        # never send here (Referrer-Policy: no-referrer); the CSRF token and the
        # SameSite=Lax session cookie are the protection.
        "WTF_CSRF_SSL_STRICT": False,
    }
    if overrides:
        cfg.update(overrides)
    _validate(cfg)
    return cfg


def _validate(cfg: dict) -> None:
    if cfg["REGISTRATION_POLICY"] not in ("open", "token", "closed"):
        raise ConfigError("REGISTRATION_POLICY must be open, token or closed")
    parts = urlsplit(cfg["ISSUER"])
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError("ISSUER must be an absolute http(s) URL without query")
    if not cfg["PRODUCTION"]:
        if not cfg["SECRET_KEY"]:
            cfg["SECRET_KEY"] = os.urandom(32).hex()
        return
    if not cfg["SECRET_KEY"] or len(cfg["SECRET_KEY"]) < 32:
        raise ConfigError("set SECRET_KEY to a random value of at least 32 characters")
    http_ok = cfg["ALLOW_HTTP_ISSUER"] and _is_loopback(parts.hostname)
    if parts.scheme != "https" and not http_ok:
        raise ConfigError("set ISSUER to an https:// URL (production refuses http)")
