"""Several gunicorn workers share what must be shared: a revocation made in one worker
holds in every worker. Runs the real server (gunicorn.conf.py, two workers, a listening
socket each) on a SQLite file and the test Redis; conftest leaves it out without Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app.cli import upgrade_database
from app.keys import generate_key_file
from tests.helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(tmp_path):
    url = f"sqlite:///{tmp_path / 'tessera.db'}"
    upgrade_database(url)
    generate_key_file(tmp_path / "keys", "RS256")
    port = free_port()
    env = {
        **os.environ,
        "TESSERA_ENV": "development",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": url,
        "REDIS_URL": os.environ["TEST_REDIS_URL"],
        "KEYS_DIR": str(tmp_path / "keys"),
        "GUNICORN_WORKERS": "2",
    }
    env.pop("ISSUER", None)
    made = subprocess.run(
        [sys.executable, "-m", "flask", "clients", "create", "--name", "api",
         "--grant-type", "client_credentials", "--scope", "openid", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    client = json.loads(made.stdout.strip().splitlines()[-1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(base + "/health/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        assert wait_until(up, timeout=20), "gunicorn did not start"
        yield base, (client["client_id"], client["client_secret"]), proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def workers(proc: subprocess.Popen) -> set[str]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
    )
    return set(out.stdout.split())


def test_a_revocation_holds_in_every_worker(server):
    base, auth, proc = server
    assert wait_until(lambda: len(workers(proc)) == 2, timeout=10)
    token = requests.post(
        base + "/token", data={"grant_type": "client_credentials"}, auth=auth, timeout=5
    ).json()["access_token"]

    def active() -> bool:
        # a new connection each time: the kernel spreads them over both workers
        resp = requests.post(base + "/introspect", data={"token": token}, auth=auth, timeout=5)
        return resp.json()["active"]

    assert all(active() for _ in range(20))
    revoked = requests.post(base + "/revoke", data={"token": token}, auth=auth, timeout=5)
    assert revoked.status_code == 200
    # the other worker learns it as fast as Redis delivers a message
    assert wait_until(lambda: not any(active() for _ in range(4)), timeout=2)
    time.sleep(0.2)
    assert not any(active() for _ in range(40))
