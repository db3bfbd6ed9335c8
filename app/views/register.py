"""POST /register (RFC 7591) and /register/<client_id> GET/PUT/DELETE (RFC 7592)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, request

from app import events
from app.db import get_db
from app.extensions import csrf, limiter, provider
from app.models import Client
from app.oauth.errors import AccessDenied, InvalidClientMetadata, InvalidRequest, InvalidToken
from app.oauth.registration import apply_metadata, client_metadata, validate_metadata
from app.security import digest, random_token, same
from app.store import find_client, use_initial_access_token
from app.web import json_response

bp = Blueprint("register", __name__)


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _invalid_token(description: str) -> InvalidToken:
    err = InvalidToken(description)
    err.headers["WWW-Authenticate"] = 'Bearer realm="tessera", error="invalid_token"'
    return err


def _check_policy() -> None:
    policy = current_app.config["REGISTRATION_POLICY"]
    if policy == "closed":
        err = AccessDenied("Dynamic client registration is closed.")
        err.status = 403
        raise err
    if policy == "token":
        token = _bearer()
        if token is None or not use_initial_access_token(get_db(), token, int(time.time())):
            raise _invalid_token("A valid initial access token is required to register.")


def _json_body() -> Any:
    """The JSON body; None when missing or malformed, too deeply nested included."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def _metadata() -> dict:
    data = _json_body()
    if not request.is_json or data is None:
        raise InvalidClientMetadata("Send the client metadata as a JSON object.")
    p = provider()
    return validate_metadata(
        data,
        known_scopes=p.known_scopes,
        signing_algs=p.keys.algs or ["RS256"],
        allow_http=not p.config["PRODUCTION"],
    )


def _response(client: Client, status: int, secret: str | None, reg_token: str | None) -> Response:
    body = client_metadata(client)
    body["registration_client_uri"] = provider().url(f"/register/{client.id}")
    if secret is not None:
        body["client_secret"] = secret
    if reg_token is not None:
        body["registration_access_token"] = reg_token
    return json_response(body, status)


def _register_limit() -> str:
    return current_app.config["RATELIMIT_REGISTER"]


@bp.post("/register")
@csrf.exempt
@limiter.limit(_register_limit)
def register() -> Response:
    _check_policy()
    meta = _metadata()
    client = Client(id=random_token(16), issued_at=int(time.time()), require_pkce=True)
    apply_metadata(client, meta)
    secret = _new_secret_if_needed(client)
    reg_token = random_token(32)
    client.registration_token_digest = digest(reg_token)
    db = get_db()
    db.add(client)
    db.commit()
    events.record("client.registered", client_id=client.id)
    return _response(client, 201, secret, reg_token)


def _managed_client(client_id: str) -> Client:
    """RFC 7592 §3: the registration access token must belong to this client."""
    token = _bearer()
    client = find_client(get_db(), client_id) if token else None
    if (
        client is None
        or client.registration_token_digest is None
        or not same(digest(token or ""), client.registration_token_digest)
    ):
        raise _invalid_token("The registration access token is invalid.")
    return client


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@csrf.exempt
def manage(client_id: str) -> Response:
    client = _managed_client(client_id)
    db = get_db()
    if request.method == "GET":
        return _response(client, 200, None, None)
    if request.method == "DELETE":
        db.delete(client)
        db.commit()
        provider().clients.invalidate(client_id)
        events.record("client.deleted", client_id=client_id)
        return Response(status=204, headers={"Cache-Control": "no-store"})
    data = _json_body()
    if isinstance(data, dict):
        if data.get("client_id") != client_id:
            raise InvalidRequest("client_id in the body must match the URL.")
        if "registration_access_token" in data or "registration_client_uri" in data:
            raise InvalidRequest("Do not send registration_access_token in the body.")
        sent_secret = data.get("client_secret")
        if sent_secret is not None and not same(
            digest(str(sent_secret)), client.secret_digest or ""
        ):
            raise InvalidRequest("client_secret does not match.")
    meta = _metadata()
    if (meta["token_endpoint_auth_method"] == "none") != client.is_public:
        raise InvalidClientMetadata("A client cannot switch between public and confidential.")
    apply_metadata(client, meta)
    secret = _new_secret_if_needed(client)
    db.commit()
    provider().clients.invalidate(client_id)
    events.record("client.updated", client_id=client_id)
    return _response(client, 200, secret, None)


def _new_secret_if_needed(client: Client) -> str | None:
    """A secret only for the client_secret_* methods; issued once, returned once."""
    if not client.token_endpoint_auth_method.startswith("client_secret_"):
        client.secret_digest = None
        return None
    if client.secret_digest is not None:
        return None
    secret = random_token(32)
    client.secret_digest = digest(secret)
    return secret
