"""RFC 6749 §4.4: a confidential client acting on its own behalf. No database write."""

from __future__ import annotations

from typing import Any

from app.models import Client
from app.oauth.claims import IDENTITY_SCOPES
from app.oauth.errors import InvalidScope, UnauthorizedClient
from app.oauth.grants.common import GrantContext
from app.oauth.params import Params, parse_scope

GRANT_TYPE = "client_credentials"


def handle(ctx: GrantContext, client: Client, params: Params) -> dict[str, Any]:
    if client.is_public or not client.allows_grant(GRANT_TYPE):
        raise UnauthorizedClient("The client may not use the client_credentials grant.")
    allowed = client.allowed_scopes() - IDENTITY_SCOPES
    requested = parse_scope(params.get("scope"))
    if requested and not set(requested) <= allowed:
        raise InvalidScope("The client is not allowed some of the requested scopes.")
    scope = " ".join(requested) if requested else " ".join(sorted(allowed))
    token, claims = ctx.tokens.access_token(
        client_id=client.id, subject=client.id, scope=scope, now=ctx.now
    )
    ctx.event("token.issued", client_id=client.id, grant_type=GRANT_TYPE, jti=claims["jti"])
    response: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": claims["exp"] - ctx.now,
    }
    if scope:
        response["scope"] = scope
    return response
