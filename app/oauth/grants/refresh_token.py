"""RFC 6749 §6 with rotation and reuse detection (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).

A rotated-out refresh token presented again revokes its family, except within the
configured grace window, where a retry gets the same successor response.
"""

from __future__ import annotations

from typing import Any

from app.models import Client
from app.oauth.errors import InvalidGrant, InvalidScope, UnauthorizedClient
from app.oauth.grants.common import (
    GrantContext,
    SignIn,
    issue_user_tokens,
    open_response,
    revoke_family_tokens,
    seal_response,
)
from app.oauth.params import Params, parse_scope
from app.store import find_refresh_token, rotate_refresh_token

GRANT_TYPE = "refresh_token"


def handle(ctx: GrantContext, client: Client, params: Params) -> dict[str, Any]:
    if not client.allows_grant(GRANT_TYPE):
        raise UnauthorizedClient("The client may not use the refresh_token grant.")
    value = params.required("refresh_token")
    token = find_refresh_token(ctx.db, value)
    if token is None or token.client_id != client.id:
        raise InvalidGrant("The refresh token is invalid.")
    if token.revoked_at is not None or token.expires_at <= ctx.now:
        raise InvalidGrant("The refresh token is expired or revoked.")
    if token.rotated_at is not None:
        return _reused(ctx, token, value)
    granted = token.scope.split()
    requested = parse_scope(params.get("scope"))
    if not set(requested) <= set(granted):
        raise InvalidScope("A refreshed token cannot have more scope than the original grant.")
    user = ctx.find_user(token.user_id or "")
    if user is None or not user.is_active:
        raise InvalidGrant("The user is no longer active.")
    scope = " ".join(requested) if requested else token.scope
    signin = SignIn(auth_time=token.auth_time, sid=token.sid, acr=token.acr, amr=token.amr)
    response = issue_user_tokens(ctx, client, user, scope, token.family_id, signin)
    if not rotate_refresh_token(ctx.db, token, seal_response(value, response), ctx.now):
        # Another request rotated it first: treat this one as its retry.
        ctx.db.rollback()
        ctx.db.refresh(token)
        return _reused(ctx, token, value)
    ctx.event("token.refreshed", client_id=client.id, user_id=user.id, family_id=token.family_id)
    return response


def _reused(ctx: GrantContext, token: Any, value: str) -> dict[str, Any]:
    # A grace of 0 is strict: even a retry in the same second revokes the family.
    within_grace = (
        ctx.refresh_grace > 0
        and token.rotated_at is not None
        and ctx.now - token.rotated_at <= ctx.refresh_grace
    )
    if within_grace and token.revoked_at is None and token.successor:
        previous = open_response(value, token.successor)
        if previous is not None:
            return previous
    revoke_family_tokens(ctx, token.family_id)
    ctx.db.commit()
    ctx.event("token.reuse_detected", client_id=token.client_id, family_id=token.family_id)
    raise InvalidGrant("The refresh token was already used; its grant is revoked.")
