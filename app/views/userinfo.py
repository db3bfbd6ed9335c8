"""GET/POST /userinfo (OIDC Core §5.3) with RFC 6750 bearer tokens and errors."""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.db import get_db
from app.extensions import csrf, provider
from app.oauth.claims import user_claims
from app.oauth.errors import InsufficientScope, InvalidRequest, InvalidToken, OAuthError
from app.store import find_user
from app.web import json_response

bp = Blueprint("userinfo", __name__)


def _bearer_token() -> str:
    """RFC 6750 §2.1 header, or §2.2 form body on POST; never both, never the query."""
    header = request.headers.get("Authorization")
    form_token = None
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        values = request.form.getlist("access_token")
        if len(values) > 1:
            raise InvalidRequest("access_token must not be repeated.")
        form_token = values[0] if values else None
    if header and form_token:
        raise InvalidRequest("Send the access token once.")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise InvalidToken("The Authorization header is not a Bearer token.")
        return value.strip()
    if form_token:
        return form_token
    raise _NoCredentials()


class _NoCredentials(Exception):
    """RFC 6750 §3.1: a request without credentials gets a bare challenge, no error code."""


def _challenge(exc: OAuthError) -> Response:
    if "WWW-Authenticate" not in exc.headers:
        description = exc.description.replace('"', "'")
        exc.headers["WWW-Authenticate"] = (
            f'Bearer realm="tessera", error="{exc.error}", error_description="{description}"'
        )
    return json_response(exc.body(), exc.status, **exc.headers)


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo() -> Response:
    p = provider()
    try:
        claims = p.tokens.decode_access_token(_bearer_token())
        if p.state.is_denied(claims.get("jti", "")):
            raise InvalidToken(detail="revoked")
        scopes = str(claims.get("scope", "")).split()
        if "openid" not in scopes:
            raise InsufficientScope("The access token does not have the openid scope.")
        user = find_user(get_db(), str(claims["sub"]))
        if user is None or not user.is_active:
            raise InvalidToken(detail="no such user")
    except OAuthError as exc:
        return _challenge(exc)
    except _NoCredentials:
        return json_response({}, 401, **{"WWW-Authenticate": 'Bearer realm="tessera"'})
    return json_response(user_claims(user, scopes))
