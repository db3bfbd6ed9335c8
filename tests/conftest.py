"""Test fixtures: a real, freshly migrated database (SQLite, or PostgreSQL when
TEST_DATABASE_URL is set), real Redis when TEST_REDIS_URL is set, and a live HTTP
server for end-to-end tests. With REQUIRE_SERVICES=1 a missing service fails."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app import create_app
from app.cli import upgrade_database
from app.keys import generate_key_file
from tests.helpers import Harness

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"


def _free_port() -> int:
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


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    generate_key_file(folder, "RS256")
    return folder


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


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Harness]:
    """One migrated app served over real HTTP for the whole session."""
    port = _free_port()
    app = build_app(tmp_path_factory.mktemp("db"), keys_dir, port)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Harness(app, f"http://127.0.0.1:{port}")
    finally:
        server.shutdown()


@pytest.fixture
def h(live: Harness) -> Harness:
    return live
