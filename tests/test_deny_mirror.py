"""The per-process copy of the deny-list: complete, current, and never trusted when not.

Two SharedState objects on one Redis stand for two workers."""

from __future__ import annotations

import os
import secrets
import time

import pytest
import redis

from app.state import PREFIX, DenyMirror, SharedState
from tests.helpers import wait_until

URL = os.environ.get("TEST_REDIS_URL")  # conftest leaves this file out without Redis


@pytest.fixture
def client() -> redis.Redis:
    if not URL:
        pytest.fail("REQUIRE_SERVICES=1 but TEST_REDIS_URL is not set")
    return redis.Redis.from_url(URL, socket_timeout=2, health_check_interval=30)


def worker(client: redis.Redis) -> SharedState:
    return SharedState(client, make_session=None)  # type: ignore[arg-type]


def ready(state: SharedState) -> bool:
    state.is_denied("warm-up")  # the mirror starts on first use
    return wait_until(lambda: state.denied.ready, timeout=5)


def test_a_revocation_in_one_worker_reaches_the_other(client):
    a, b = worker(client), worker(client)
    assert ready(a) and ready(b)
    jti = secrets.token_hex(8)
    assert b.is_denied(jti) is False
    a.deny(jti, int(time.time()) + 60)
    assert a.denied.lookup(jti) is True  # the revoking worker at once
    assert wait_until(lambda: b.denied.lookup(jti) is True, timeout=2)
    assert b.is_denied(jti) is True


def test_revocations_made_before_a_worker_starts_are_loaded(client):
    jti = secrets.token_hex(8)
    worker(client).deny(jti, int(time.time()) + 60)
    late = worker(client)
    assert ready(late)
    assert late.denied.lookup(jti) is True


def test_expired_revocations_are_no_longer_reported(client):
    state = worker(client)
    assert ready(state)
    jti = secrets.token_hex(8)
    state.denied.add(jti, time.time() - 1)  # the token itself has expired by now
    assert state.denied.lookup(jti) is False


def test_without_a_live_subscription_the_answer_comes_from_redis(client):
    state = worker(client)
    assert ready(state)
    state.denied.ready = False  # as while (re)subscribing
    jti = secrets.token_hex(8)
    client.set(PREFIX + "deny:" + jti, b"1", ex=60)  # denied, but no message was sent
    assert state.denied.lookup(jti) is None
    assert state.is_denied(jti) is True


def test_the_subscription_is_kept_alive_by_pings(client):
    mirror = DenyMirror(client)
    mirror.PING_EVERY = 0.2  # type: ignore[misc]
    mirror.lookup("warm-up")
    assert wait_until(lambda: mirror.ready, timeout=5)
    time.sleep(1.5)  # several ping intervals: pongs keep it trusted
    assert mirror.ready
