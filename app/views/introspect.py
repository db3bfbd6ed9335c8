"""POST /introspect (RFC 7662) and POST /revoke (RFC 7009), both with client authentication."""

from __future__ import annotations

from flask import Blueprint, Response, g

from app import events
from app.db import get_db
from app.extensions import csrf, provider
from app.oauth.errors import InvalidClient
from app.oauth.introspection import introspect as introspect_token
from app.oauth.introspection import revoke as revoke_token
from app.views.token import authenticate, form_params
from app.web import json_response

bp = Blueprint("introspect", __name__)


@bp.post("/introspect")
@csrf.exempt
def introspect() -> Response:
    params = form_params()
    p = provider()
    client = authenticate(p, params)
    if client.is_public:
        raise InvalidClient("Public clients cannot introspect tokens.")
    value = params.required("token")
    params.get("token_type_hint")  # optional; we find the token either way
    return json_response(introspect_token(get_db(), p.tokens, p.state, client, value))


@bp.post("/revoke")
@csrf.exempt
def revoke() -> Response:
    params = form_params()
    p = provider()
    client = authenticate(p, params)
    value = params.required("token")
    params.get("token_type_hint")
    kind = revoke_token(get_db(), p.tokens, p.state, client, value)
    if "db" in g:
        g.db.commit()
    if kind:
        events.record("token.revoked", client_id=client.id, kind=kind)
    return json_response({}, 200)
