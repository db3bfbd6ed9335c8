"""RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6) and single-use codes (OAuth 2.1 §4.1.3)."""

from __future__ import annotations

from typing import Any

from app.models import Client, new_id
from app.oauth import pkce
from app.oauth.errors import InvalidGrant, UnauthorizedClient
from app.oauth.grants.common import GrantContext, SignIn, issue_user_tokens, revoke_family_tokens
from app.oauth.params import Params
from app.store import consume_code, find_code

GRANT_TYPE = "authorization_code"


def handle(ctx: GrantContext, client: Client, params: Params) -> dict[str, Any]:
    if not client.allows_grant(GRANT_TYPE):
        raise UnauthorizedClient("The client may not use the authorization_code grant.")
    value = params.required("code")
    redirect_uri = params.get("redirect_uri")
    verifier = params.get("code_verifier")
    code = find_code(ctx.db, value)
    # Every check passes before the code is marked used, so a stolen code replayed
    # without the client's credentials or verifier revokes nothing.
    if code is None or code.client_id != client.id:
        raise InvalidGrant("The authorization code is invalid.")
    if code.redirect_uri is not None and redirect_uri != code.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request.")
    if (
        code.redirect_uri is None
        and redirect_uri is not None
        and redirect_uri not in client.redirect_uris
    ):
        raise InvalidGrant("redirect_uri does not match the authorization request.")
    pkce.verify(code.code_challenge, verifier)
    if code.used_at is None and code.expires_at <= ctx.now:
        raise InvalidGrant("The authorization code has expired.")
    family_id = new_id()
    if code.used_at is not None or not consume_code(ctx.db, code, family_id, ctx.now):
        _revoke_replayed(ctx, code.id)
        raise InvalidGrant("The authorization code was already used.")
    user = ctx.find_user(code.user_id)
    if user is None or not user.is_active:
        raise InvalidGrant("The user is no longer active.")
    signin = SignIn(auth_time=code.auth_time, sid=code.sid, acr=code.acr, amr=code.amr)
    response = issue_user_tokens(ctx, client, user, code.scope, family_id, signin, nonce=code.nonce)
    ctx.event("token.issued", client_id=client.id, user_id=user.id, grant_type=GRANT_TYPE)
    return response


def _revoke_replayed(ctx: GrantContext, code_id: str) -> None:
    """RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it; commit first."""
    from app.models import AuthorizationCode

    ctx.db.rollback()
    code = ctx.db.get(AuthorizationCode, code_id)
    if code is not None and code.family_id:
        revoke_family_tokens(ctx, code.family_id)
        ctx.db.commit()
        ctx.event("token.replay_revoked", client_id=code.client_id, family_id=code.family_id)
