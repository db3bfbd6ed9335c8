"""POST /token (RFC 6749 §3.2): authenticate the client, dispatch to the grant's handler."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, request

from app import events
from app.db import get_db
from app.extensions import Provider, client_id_key, csrf, limiter, provider
from app.models import Client
from app.oauth.client_auth import ClientAuthContext, authenticate_client
from app.oauth.errors import TemporarilyUnavailable, UnsupportedGrantType
from app.oauth.grants import GRANTS, GrantContext
from app.oauth.params import Params
from app.web import json_response

bp = Blueprint("token", __name__)


def form_params() -> Params:
    """The form body's parameters; the query string is never read (RFC 6749 §3.2)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return Params({})
    return Params.from_urlencoded(request.get_data(cache=True))


def auth_context(p: Provider, path: str) -> ClientAuthContext:
    """What client authentication needs at the token, introspection and revocation endpoints."""
    return ClientAuthContext(
        lookup=p.clients.get,
        audiences=[p.issuer, p.url("/token"), p.url(path)],
        claim_once=p.state.claim_once,
        client_jwks=p.client_jwks,
    )


def authenticate(p: Provider, params: Params) -> Client:
    return authenticate_client(
        request.headers.get("Authorization"), params, auth_context(p, request.path)
    )


def grant_context(p: Provider, open_db) -> GrantContext:
    return GrantContext(
        open_db=open_db,
        tokens=p.tokens,
        state=p.state,
        refresh_grace=p.config["REFRESH_REUSE_GRACE"],
        now=int(time.time()),
        event=events.record,
    )


def _token_limit() -> str:
    return current_app.config["RATELIMIT_TOKEN"]


def _check_fast_path_limit(client_id: str) -> None:
    """The fast path counts the requests it answers; once it refuses a client, so do we."""
    exceeded = getattr(current_app.extensions.get("tessera_token_allowance"), "exceeded", None)
    wait = exceeded(client_id) if exceeded is not None else None
    if wait is not None:
        err = TemporarilyUnavailable()
        err.headers["Retry-After"] = str(wait)
        raise err


@bp.post("/token")
@csrf.exempt
@limiter.limit(_token_limit, key_func=client_id_key)
def token() -> Response:
    params = form_params()
    p = provider()
    client = authenticate(p, params)
    _check_fast_path_limit(client.id)
    handler = GRANTS.get(params.required("grant_type"))
    if handler is None:
        raise UnsupportedGrantType()
    ctx = grant_context(p, get_db)
    response = handler(ctx, client, params)
    if ctx.used_db:
        ctx.db.commit()
    return json_response(response)
