"""Migrations against the models, production configuration checks, and the Flask CLI."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.hazmat.primitives import serialization
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from app import create_app, models
from app.cli import alembic_config, upgrade_database
from app.db import Base
from app.keys import KeyStore, generate_key_file
from config import ConfigError, load_config
from tests.helpers import PASSWORD, REDIRECT, build_app, form_fields

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TABLES = {
    "users",
    "clients",
    "authorization_codes",
    "tokens",
    "consents",
    "web_sessions",
    "revoked_jtis",
    "one_time_keys",
    "initial_access_tokens",
}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: none of the test run's settings leak in."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL") if k in os.environ}
    env.update(extra)
    return env


# -- migrations ------------------------------------------------------------------------

# SQLite always; PostgreSQL whenever the run has it (conftest fails the run if it is
# required and missing).
BACKENDS = ["sqlite", *(["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])]


@pytest.fixture(params=BACKENDS)
def scratch_url(request, tmp_path):
    """An empty database of its own: a SQLite file, or a PostgreSQL schema dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    base = os.environ["TEST_DATABASE_URL"]
    schema = "scratch_" + secrets.token_hex(6)
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def drift(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_match_the_models_and_downgrade_cleanly(scratch_url):
    assert models.User.__tablename__ in Base.metadata.tables
    upgrade_database(scratch_url)
    assert tables(scratch_url) >= TABLES
    assert drift(scratch_url) == []
    command.downgrade(alembic_config(scratch_url), "base")
    assert tables(scratch_url) <= {"alembic_version"}
    missing = {diff[1].name for diff in drift(scratch_url) if diff[0] == "add_table"}
    assert missing == set(Base.metadata.tables)  # the comparison does see a difference
    upgrade_database(scratch_url)
    assert drift(scratch_url) == []


def test_cli_db_upgrade(scratch_url, tmp_path, keys_dir):
    app = build_app(tmp_path, keys_dir, 5990, DATABASE_URL=scratch_url)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at head" in result.output
    assert tables(scratch_url) >= TABLES
    again = runner.invoke(args=["db", "upgrade"])  # already at head: nothing to do
    assert again.exit_code == 0, again.output
    assert drift(scratch_url) == []


# -- production configuration ----------------------------------------------------------

GOOD_SECRET = secrets.token_urlsafe(40)


@pytest.fixture
def production(monkeypatch, tmp_path):
    """A production environment with nothing else set."""
    for name in (
        "SECRET_KEY",
        "ISSUER",
        "HOST",
        "PORT",
        "REDIS_URL",
        "REGISTRATION_POLICY",
        "TESSERA_ALLOW_HTTP_ISSUER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TESSERA_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.db'}")
    monkeypatch.setenv("KEYS_DIR", str(tmp_path / "keys"))
    return monkeypatch


REFUSED = [
    ({}, "SECRET_KEY"),
    ({"SECRET_KEY": "x" * 31, "ISSUER": "https://id.example.com"}, "SECRET_KEY"),
    ({"SECRET_KEY": GOOD_SECRET, "ISSUER": "http://id.example.com"}, "ISSUER"),
    ({"SECRET_KEY": GOOD_SECRET}, "ISSUER"),  # the default issuer is http
    (
        {
            "SECRET_KEY": GOOD_SECRET,
            "ISSUER": "http://id.example.com",
            "TESSERA_ALLOW_HTTP_ISSUER": "1",  # only loopback may be http
        },
        "ISSUER",
    ),
]


@pytest.mark.parametrize(("env", "names"), REFUSED)
def test_production_refuses_unsafe_settings(production, env, names):
    for key, value in env.items():
        production.setenv(key, value)
    with pytest.raises(ConfigError) as exc:
        load_config()
    message = str(exc.value)
    assert names in message and "set" in message.lower()
    assert "\n" not in message


def test_production_refuses_to_start_without_a_signing_key(production):
    production.setenv("SECRET_KEY", GOOD_SECRET)
    production.setenv("ISSUER", "https://id.example.com")
    with pytest.raises(ConfigError) as exc:
        create_app()
    message = str(exc.value)
    assert "KEYS_DIR" in message and "flask keys generate" in message
    assert "\n" not in message


def test_production_accepts_safe_settings(production, tmp_path):
    production.setenv("SECRET_KEY", GOOD_SECRET)
    production.setenv("ISSUER", "https://id.example.com/")
    generate_key_file(tmp_path / "keys")
    app = create_app()
    assert app.config["ISSUER"] == "https://id.example.com"
    assert app.config["REGISTRATION_POLICY"] == "token"  # the production default
    production.setenv("ISSUER", "http://127.0.0.1:8080")
    production.setenv("TESSERA_ALLOW_HTTP_ISSUER", "1")
    assert load_config()["ISSUER"] == "http://127.0.0.1:8080"


def test_development_makes_up_a_secret_key(monkeypatch):
    monkeypatch.setenv("TESSERA_ENV", "development")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first, second = load_config()["SECRET_KEY"], load_config()["SECRET_KEY"]
    assert len(first) >= 32 and first != second


HTTPS = {"SECRET_KEY": GOOD_SECRET, "ISSUER": "https://id.example.com"}


@pytest.mark.parametrize(
    ("program", "env", "expected"),
    [
        ("gunicorn", {}, "SECRET_KEY"),
        ("gunicorn", {**HTTPS, "ISSUER": "http://id.example.com"}, "ISSUER"),
        ("gunicorn", HTTPS, "KEYS_DIR"),  # the CLI may run without a key, to create one
        ("flask", {}, "SECRET_KEY"),
        ("flask", {**HTTPS, "SECRET_KEY": "too short"}, "SECRET_KEY"),
        ("flask", {**HTTPS, "ISSUER": "http://id.example.com"}, "ISSUER"),
    ],
)
def test_entry_points_refuse_with_one_line(tmp_path, program, env, expected):
    """What an operator sees: one line saying what to set, no traceback."""
    args = {
        "gunicorn": [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
        "flask": [str(BIN / "flask"), "db", "upgrade"],
    }[program]
    proc = subprocess.run(
        args,
        cwd=ROOT,
        env=bare_env(
            TESSERA_ENV="production",
            DATABASE_URL=f"sqlite:///{tmp_path / 'prod.db'}",
            KEYS_DIR=str(tmp_path / "keys"),
            BIND="127.0.0.1:0",
            GUNICORN_WORKERS="1",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0] and "Traceback" not in proc.stderr


# -- the command line ------------------------------------------------------------------


def test_flask_cli_works_from_the_repository_root_without_settings():
    proc = subprocess.run(
        [str(BIN / "flask"), "--help"],
        cwd=ROOT,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    commands = set(re.findall(r"^  (\w+)\s", proc.stdout, re.MULTILINE))
    assert {"db", "keys", "users", "clients", "demo"} <= commands, proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def cli_app(tmp_path_factory, keys_dir):
    return build_app(tmp_path_factory.mktemp("cli"), keys_dir, 5991)


def invoke(app, *args: str, stdin: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=stdin)


def token_for(app, client_id: str, secret: str):
    return app.test_client().post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )


def test_keys_generate_and_list(tmp_path, keys_dir):
    folder = tmp_path / "new-keys"
    app = build_app(tmp_path, keys_dir, 5992, KEYS_DIR=str(folder))
    result = invoke(app, "keys", "generate")
    assert result.exit_code == 0, result.output
    (pem,) = folder.glob("*.pem")
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    serialization.load_pem_private_key(pem.read_bytes(), None)  # a usable private key
    first_kid = KeyStore.from_dir(folder).keys[0].kid
    assert first_kid in result.output
    assert invoke(app, "keys", "generate", "--if-missing").exit_code == 0
    assert len(list(folder.glob("*.pem"))) == 1
    result = invoke(app, "keys", "generate", "--alg", "ES256")
    assert result.exit_code == 0, result.output
    assert len(list(folder.glob("*.pem"))) == 2
    listing = invoke(app, "keys", "list")
    assert listing.exit_code == 0, listing.output
    lines = listing.output.strip().splitlines()
    assert len(lines) == 2
    assert "ES256" in lines[0] and "signing" in lines[0]  # the newest signs
    assert lines[1].split() == [first_kid, "RS256", "published"]
    assert invoke(app, "keys", "generate", "--alg", "HS256").exit_code != 0


def _sign_in(app, login: str, password: str):
    browser = app.test_client()
    fields = form_fields(browser.get("/login").get_data(as_text=True))
    fields.update(username=login, password=password)
    return browser.post("/login", data=fields)


@pytest.mark.parametrize("admin", [True, False])
def test_users_create(cli_app, admin):
    name = "cli" + secrets.token_hex(4)
    args = ["users", "create", name, "--email", f"{name.upper()}@Example.com", "--password-stdin"]
    result = invoke(cli_app, *args, *(["--admin"] if admin else []), stdin=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert f"created user {name}" in result.output
    assert PASSWORD not in result.output
    with cli_app.app_context():
        from app.db import get_db

        user = get_db().scalars(select(models.User).where(models.User.username == name)).one()
        assert user.is_admin is admin
        assert user.email == f"{name}@example.com"
        assert PASSWORD not in user.password_hash and user.password_hash.startswith("$argon2id$")
    assert _sign_in(cli_app, name, PASSWORD).status_code == 302
    assert _sign_in(cli_app, name, "wrong password").status_code == 401
    duplicate = invoke(cli_app, *args, stdin=PASSWORD + "\n")
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output


def test_users_create_refuses_a_short_password(cli_app):
    name = "cli" + secrets.token_hex(4)
    args = ["users", "create", name, "--email", f"{name}@example.com", "--password-stdin"]
    result = invoke(cli_app, *args, stdin="short\n")
    assert result.exit_code != 0 and "8 characters" in result.output
    assert _sign_in(cli_app, name, "short").status_code == 401


def test_clients_create_prints_credentials_that_work(cli_app):
    result = invoke(
        cli_app, "clients", "create", "--name", "CLI app", "--grant-type", "client_credentials"
    )
    assert result.exit_code == 0, result.output
    client_id = re.search(r"client_id:\s+(\S+)", result.output).group(1)
    secret = re.search(r"client_secret:\s+(\S+)", result.output).group(1)
    resp = token_for(cli_app, client_id, secret)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["token_type"] == "Bearer"
    assert token_for(cli_app, client_id, secret + "x").status_code == 401


def test_clients_create_json(cli_app):
    result = invoke(
        cli_app,
        "clients",
        "create",
        "--name",
        "CLI web app",
        "--redirect-uri",
        REDIRECT,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "client_credentials",
        "--scope",
        "openid profile",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"client_id", "client_secret"}
    assert token_for(cli_app, out["client_id"], out["client_secret"]).status_code == 200
    with cli_app.app_context():
        from app.db import get_db

        client = get_db().get(models.Client, out["client_id"])
        assert client.redirect_uris == [REDIRECT]
        assert client.scope == "openid profile"
        assert client.require_pkce is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "x"], "--redirect-uri is required"),
        (["--name", "x", "--grant-type", "client_credentials", "--auth-method", "none"], "public"),
        (["--name", "x", "--redirect-uri", "https://a.example/cb#frag"], "fragment"),
        (["--name", "x", "--grant-type", "client_credentials", "--scope", "nope"], "nope"),
    ],
)
def test_clients_create_refuses_bad_input(cli_app, args, message):
    result = invoke(cli_app, "clients", "create", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_public_client_has_no_secret(cli_app):
    result = invoke(
        cli_app,
        "clients",
        "create",
        "--name",
        "SPA",
        "--redirect-uri",
        REDIRECT,
        "--auth-method",
        "none",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["client_secret"] is None


def test_initial_token_opens_registration_once(tmp_path, keys_dir):
    app = build_app(tmp_path, keys_dir, 5993, REGISTRATION_POLICY="token")
    web = app.test_client()
    metadata = {"client_name": "registered", "redirect_uris": [REDIRECT]}
    refused = web.post("/register", json=metadata)
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "invalid_token"
    result = invoke(app, "clients", "initial-token")
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert len(token) >= 32 and "\n" not in token
    auth = {"Authorization": "Bearer " + token}
    created = web.post("/register", json=metadata, headers=auth)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["client_id"]
    again = web.post("/register", json=metadata, headers=auth)  # --uses 1 by default
    assert again.status_code == 401
    many = invoke(app, "clients", "initial-token", "--uses", "2").output.strip()
    for _ in range(2):
        resp = web.post("/register", json=metadata, headers={"Authorization": "Bearer " + many})
        assert resp.status_code == 201
    expired = invoke(app, "clients", "initial-token", "--ttl", "-1").output.strip()
    resp = web.post("/register", json=metadata, headers={"Authorization": "Bearer " + expired})
    assert resp.status_code == 401


def _seed(app) -> tuple[str, str]:
    result = invoke(app, "demo", "seed")
    assert result.exit_code == 0, result.output
    password = re.search(r"Demo user:\s+demo / (\S+)", result.output).group(1)
    secret = re.search(r"Demo client:\s+demo-client / (\S+)", result.output).group(1)
    return password, secret


def test_demo_seed_is_idempotent(cli_app):
    first_password, first_secret = _seed(cli_app)
    assert token_for(cli_app, "demo-client", first_secret).status_code == 200
    password, secret = _seed(cli_app)
    with cli_app.app_context():
        from app.db import get_db

        db = get_db()
        count = select(func.count()).select_from(models.User)
        assert db.scalar(count.where(models.User.username == "demo")) == 1
        count = select(func.count()).select_from(models.Client)
        assert db.scalar(count.where(models.Client.id == "demo-client")) == 1
    assert token_for(cli_app, "demo-client", secret).status_code == 200
    assert token_for(cli_app, "demo-client", first_secret).status_code == 401
    assert _sign_in(cli_app, "demo", password).status_code == 302
    assert _sign_in(cli_app, "demo", first_password).status_code == 401
