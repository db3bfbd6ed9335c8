"""GET/POST /authorize (RFC 6749 §3.1, OIDC Core §3.1.2.1)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.extensions import csrf, provider
from app.interaction import advance
from app.oauth.authorize import resolve_redirect, validate_request
from app.web import params_from

bp = Blueprint("authorize", __name__)


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt  # the client's own request, not a form of ours
def authorize() -> Response:
    params = params_from(request.form if request.method == "POST" else request.args)
    p = provider()
    client_id = params.get("client_id")
    client = p.clients.get(client_id) if client_id else None
    client, redirect_uri, given = resolve_redirect(client, params)
    req = validate_request(
        params, client, redirect_uri, given, p.known_scopes, p.tokens.decode_id_token_hint
    )
    return advance(req, None)
