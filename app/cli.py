"""Flask CLI: ``flask db|keys|users|clients|demo ...`` (run from the repository root)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.db import get_db
from app.extensions import provider
from app.keys import SUPPORTED_ALGS, KeyStore, generate_key_file
from app.models import Client, InitialAccessToken, User
from app.oauth.client_auth import AUTH_METHODS
from app.oauth.registration import GRANT_TYPES, check_redirect_uri
from app.security import digest, random_token
from app.store import find_client, find_user_by_login

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

db_cli = AppGroup("db", help="Database migrations (Alembic).")
keys_cli = AppGroup("keys", help="Signing keys.")
users_cli = AppGroup("users", help="User accounts.")
clients_cli = AppGroup("clients", help="OAuth clients.")
demo_cli = AppGroup("demo", help="Demo data for local use.")


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    upgrade_database(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    from alembic import command

    command.downgrade(alembic_config(current_app.config["DATABASE_URL"]), revision)


@keys_cli.command("generate")
@click.option("--alg", type=click.Choice(SUPPORTED_ALGS), default="RS256", show_default=True)
@click.option("--if-missing", is_flag=True, help="Only when the folder has no key yet.")
def keys_generate(alg: str, if_missing: bool) -> None:
    """Write a new private key to KEYS_DIR; it becomes the signing key on restart."""
    folder = current_app.config["KEYS_DIR"]
    if if_missing and KeyStore.from_dir(folder).keys:
        click.echo(f"a signing key already exists in {folder}")
        return
    path = generate_key_file(folder, alg)
    click.echo(f"wrote {path.name} ({alg}); kid {KeyStore.from_dir(folder).keys[0].kid}")


@keys_cli.command("list")
def keys_list() -> None:
    """Show the keys in KEYS_DIR, newest (signing) first."""
    for i, key in enumerate(KeyStore.from_dir(current_app.config["KEYS_DIR"]).keys):
        click.echo(f"{key.kid}  {key.alg}  {'signing' if i == 0 else 'published'}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    return password


@users_cli.command("create")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--name", default=None, help="Full name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
def users_create(
    username: str, email: str, name: str | None, password_stdin: bool, admin: bool
) -> None:
    """Create a user (the password is hashed with argon2id)."""
    db = get_db()
    if find_user_by_login(db, username) or find_user_by_login(db, email):
        raise click.ClickException("a user with that username or e-mail already exists")
    password = _read_password(password_stdin)
    user = User(
        username=username,
        email=email.lower(),
        name=name,
        is_admin=admin,
        email_verified=True,
        password_hash=provider().passwords.hash(password),
    )
    db.add(user)
    db.commit()
    click.echo(f"created user {username} ({user.id})")


def create_client(
    name: str,
    redirect_uris: list[str],
    grant_types: list[str],
    auth_method: str,
    scope: str,
    first_party: bool = False,
    require_pkce: bool = True,
) -> tuple[Client, str | None]:
    """Create a client directly (operator path, no registration policy)."""
    for uri in redirect_uris:
        check_redirect_uri(uri, "native" if "://" not in uri else "web")
    unknown = set(scope.split()) - provider().known_scopes
    if unknown:
        raise click.ClickException(f"unknown scope: {' '.join(sorted(unknown))}")
    secret = None if auth_method == "none" else random_token(32)
    client = Client(
        id=random_token(16),
        client_name=name,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        response_types=["code"] if "authorization_code" in grant_types else [],
        token_endpoint_auth_method=auth_method,
        scope=scope,
        first_party=first_party,
        require_pkce=require_pkce,
        secret_digest=digest(secret) if secret else None,
        issued_at=int(time.time()),
    )
    db = get_db()
    db.add(client)
    db.commit()
    provider().clients.invalidate(client.id)
    return client, secret


@clients_cli.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--grant-type", "grant_types", multiple=True, type=click.Choice(GRANT_TYPES))
@click.option(
    "--auth-method",
    type=click.Choice(AUTH_METHODS),
    default="client_secret_basic",
    show_default=True,
)
@click.option(
    "--scope", default="openid profile email address phone offline_access", show_default=True
)
@click.option("--first-party", is_flag=True, help="Skip the consent page for this client.")
@click.option("--no-require-pkce", is_flag=True, help="Confidential clients only.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def clients_create(
    name: str,
    redirect_uris: tuple[str, ...],
    grant_types: tuple[str, ...],
    auth_method: str,
    scope: str,
    first_party: bool,
    no_require_pkce: bool,
    as_json: bool,
) -> None:
    """Create a client and print its client_id and client_secret."""
    grants = list(grant_types) or ["authorization_code", "refresh_token"]
    if "authorization_code" in grants and not redirect_uris:
        raise click.ClickException("--redirect-uri is required for authorization_code")
    if auth_method == "none" and (no_require_pkce or "client_credentials" in grants):
        raise click.ClickException(
            "public clients always use PKCE and cannot use client_credentials"
        )
    try:
        client, secret = create_client(
            name, list(redirect_uris), grants, auth_method, scope, first_party, not no_require_pkce
        )
    except Exception as exc:  # noqa: BLE001 - shown to the operator as one line
        raise click.ClickException(str(exc)) from None
    out = {"client_id": client.id, "client_secret": secret}
    click.echo(
        json.dumps(out) if as_json else f"client_id:     {client.id}\nclient_secret: {secret}"
    )


@clients_cli.command("initial-token")
@click.option("--ttl", default=86400, show_default=True, help="Lifetime in seconds.")
@click.option("--uses", default=1, show_default=True, help="Registrations allowed (0 = any).")
def clients_initial_token(ttl: int, uses: int) -> None:
    """Print an initial access token for REGISTRATION_POLICY=token (RFC 7591 §3)."""
    token = random_token(32)
    db = get_db()
    db.add(
        InitialAccessToken(
            digest=digest(token), expires_at=int(time.time()) + ttl, uses_left=uses or None
        )
    )
    db.commit()
    click.echo(token)


@demo_cli.command("seed")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    default=["http://127.0.0.1:8000/callback", "http://localhost:8000/callback"],
)
def demo_seed(redirect_uris: tuple[str, ...]) -> None:
    """Create (or reset) the demo user and demo client and print their credentials."""
    db = get_db()
    password = random_token(9)
    user = find_user_by_login(db, "demo")
    if user is None:
        user = User(
            username="demo",
            email="demo@example.com",
            email_verified=True,
            name="Demo User",
            given_name="Demo",
            family_name="User",
            locale="en",
        )
        db.add(user)
    user.password_hash = provider().passwords.hash(password)
    old = find_client(db, "demo-client")
    if old is not None:
        db.delete(old)
    db.commit()
    secret = random_token(32)
    db.add(
        Client(
            id="demo-client",
            client_name="Demo client",
            redirect_uris=list(redirect_uris),
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_basic",
            scope="openid profile email address phone offline_access",
            secret_digest=digest(secret),
        )
    )
    db.commit()
    provider().clients.invalidate("demo-client")
    issuer = current_app.config["ISSUER"]
    click.echo(f"""
  Issuer:         {issuer}
  Discovery:      {issuer}/.well-known/openid-configuration
  Demo user:      demo / {password}
  Demo client:    demo-client / {secret}
  Redirect URIs:  {" ".join(redirect_uris)}
""")


def init_app(app: Flask) -> None:
    for group in (db_cli, keys_cli, users_cli, clients_cli, demo_cli):
        app.cli.add_command(group)
