"""Test fixtures: a real, freshly migrated database (SQLite, or PostgreSQL when
TEST_DATABASE_URL is set), real Redis when TEST_REDIS_URL is set, and a live HTTP
server for end-to-end tests. With REQUIRE_SERVICES=1 a missing service fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.keys import generate_key_file
from tests.helpers import Harness, serve

# The deny-list copy, and workers sharing state, exist only with Redis: these tests
# run whenever Redis is given (and CI's REQUIRE_SERVICES=1 fails when it is not).
collect_ignore = (
    []
    if os.environ.get("TEST_REDIS_URL") or os.environ.get("REQUIRE_SERVICES") == "1"
    else ["test_deny_mirror.py", "test_multiprocess.py"]
)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    generate_key_file(folder, "RS256")
    return folder


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, keys_dir: Path) -> Iterator[Harness]:
    """One migrated app served over real HTTP for the whole session."""
    with serve(tmp_path_factory.mktemp("db"), keys_dir) as harness:
        yield harness


@pytest.fixture
def h(live: Harness) -> Harness:
    return live
