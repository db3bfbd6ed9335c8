"""The authorization endpoint's protocol: validate a request, decide, issue a code.

RFC 6749 §4.1, OAuth 2.1 §4.1, RFC 7636, RFC 9207 and OpenID Connect Core §3.1.2.
Errors raised before the redirect URI is trusted are ``UntrustedRedirect``
(rendered as a page); after that they are redirected to the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.models import AuthorizationCode, Client
from app.oauth import pkce
from app.oauth.errors import (
    InvalidRequest,
    InvalidScope,
    OAuthError,
    RegistrationNotSupported,
    RequestNotSupported,
    RequestUriNotSupported,
    UnauthorizedClient,
    UnsupportedResponseType,
    UntrustedRedirect,
)
from app.oauth.params import Params, parse_scope
from app.security import digest, random_token

RESPONSE_MODES = ("query", "form_post")
PROMPTS = ("none", "login", "consent", "select_account")
DISPLAYS = ("page", "popup", "touch", "wap")
ACR_PASSWORD = "1"  # ISO/IEC 29115 level 1: a password
MAX_NONCE = 512
MAX_STATE = 2048


@dataclass
class AuthorizationRequest:
    """A validated authorization request, small enough to keep in the session."""

    client_id: str
    redirect_uri: str
    redirect_uri_given: bool
    scopes: list[str]
    state: str | None = None
    nonce: str | None = None
    response_mode: str = "query"
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    prompt: list[str] = field(default_factory=list)
    max_age: int | None = None
    login_hint: str | None = None
    id_token_hint_sub: str | None = None
    acr_values: list[str] = field(default_factory=list)
    ui_locales: str | None = None
    display: str | None = None
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(**data)

    @property
    def is_openid(self) -> bool:
        return "openid" in self.scopes


@dataclass
class RedirectTarget:
    """Where and how errors and results are returned once the redirect URI is trusted."""

    redirect_uri: str
    state: str | None
    response_mode: str


def resolve_redirect(client: Client | None, params: Params) -> tuple[Client, str, bool]:
    """Find the client and the exact registered redirect URI (RFC 9700 §4.1.3)."""
    if client is None:
        raise UntrustedRedirect("The client is unknown.")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        if "openid" in (params.get("scope") or "").split() or len(client.redirect_uris) != 1:
            raise UntrustedRedirect("The redirect_uri parameter is required.")
        return client, client.redirect_uris[0], False
    if redirect_uri not in client.redirect_uris:
        raise UntrustedRedirect("The redirect_uri is not registered for this client.")
    return client, redirect_uri, True


def validate_request(
    params: Params,
    client: Client,
    redirect_uri: str,
    given: bool,
    known_scopes: set[str],
    decode_id_token_hint: Callable[[str], dict[str, Any]],
) -> AuthorizationRequest:
    """Validate everything after the redirect URI; errors carry a RedirectTarget."""
    target = RedirectTarget(redirect_uri, None, "query")
    try:
        target.state = params.get("state")
        mode = params.get("response_mode") or "query"
        if mode not in RESPONSE_MODES:
            raise InvalidRequest("response_mode must be query or form_post.")
        target.response_mode = mode
        return _validate(params, client, target, given, known_scopes, decode_id_token_hint)
    except OAuthError as exc:
        exc.redirect = target  # type: ignore[attr-defined]
        raise


def _validate(
    params: Params,
    client: Client,
    target: RedirectTarget,
    given: bool,
    known_scopes: set[str],
    decode_id_token_hint: Callable[[str], dict[str, Any]],
) -> AuthorizationRequest:
    if target.state is not None and len(target.state) > MAX_STATE:
        raise InvalidRequest("state is too long.")
    for name, error in (
        ("request", RequestNotSupported),
        ("request_uri", RequestUriNotSupported),
        ("registration", RegistrationNotSupported),
    ):
        if params.get(name) is not None:
            raise error()
    response_type = params.required("response_type")
    if response_type != "code":
        raise UnsupportedResponseType()
    if "code" not in client.response_types or not client.allows_grant("authorization_code"):
        raise UnauthorizedClient("The client may not use the authorization code flow.")
    scopes = _scopes(params.get("scope"), client, known_scopes)
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    pkce.validate_challenge(challenge, method, client.is_public or client.require_pkce)
    nonce = params.get("nonce")
    if nonce is not None and len(nonce) > MAX_NONCE:
        raise InvalidRequest("nonce is too long.")
    prompt = (params.get("prompt") or "").split()
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequest("prompt=none cannot be combined with other values.")
    hint = params.get("id_token_hint")
    return AuthorizationRequest(
        client_id=client.id,
        redirect_uri=target.redirect_uri,
        redirect_uri_given=given,
        scopes=scopes,
        state=target.state,
        nonce=nonce,
        response_mode=target.response_mode,
        code_challenge=challenge,
        code_challenge_method="S256" if challenge else None,
        prompt=[p for p in prompt if p in PROMPTS],
        max_age=_max_age(params.get("max_age")),
        login_hint=params.get("login_hint"),
        id_token_hint_sub=_hint_subject(hint, decode_id_token_hint) if hint else None,
        acr_values=(params.get("acr_values") or "").split(),
        ui_locales=params.get("ui_locales"),
        display=params.get("display") if params.get("display") in DISPLAYS else None,
    )


def _scopes(raw: str | None, client: Client, known: set[str]) -> list[str]:
    scopes = parse_scope(raw)
    if not scopes:
        raise InvalidScope("The scope parameter is required.")
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise InvalidScope(f"Unknown scope: {' '.join(unknown)}.")
    if not set(scopes) <= client.allowed_scopes():
        raise InvalidScope("The client is not allowed some of the requested scopes.")
    return scopes


def _max_age(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise InvalidRequest("max_age must be a non-negative integer.")
    return int(raw)


def _hint_subject(hint: str, decode: Callable[[str], dict[str, Any]]) -> str:
    try:
        return str(decode(hint)["sub"])
    except OAuthError:
        raise InvalidRequest("id_token_hint is not a valid ID token from this issuer.") from None


def needs_login(req: AuthorizationRequest, user_id: str | None, login_at: float | None) -> bool:
    """OIDC Core §3.1.2.3: sign in again for prompt=login, max_age, or another user's hint.

    A sign-in made during this very request satisfies all three.
    """
    if user_id is None or login_at is None:
        return True
    if login_at >= req.created_at:
        return False
    if "login" in req.prompt:
        return True
    if req.max_age is not None and time.time() - login_at > req.max_age:
        return True
    return req.id_token_hint_sub is not None and req.id_token_hint_sub != user_id


def issue_code(
    db: Session,
    req: AuthorizationRequest,
    *,
    user_id: str,
    auth_time: int,
    sid: str | None,
    amr: list[str] | None,
    ttl: int,
) -> str:
    """Store a single-use code (as a digest) bound to everything the token request checks."""
    code = random_token(32)
    now = int(time.time())
    db.add(
        AuthorizationCode(
            digest=digest(code),
            client_id=req.client_id,
            user_id=user_id,
            redirect_uri=req.redirect_uri if req.redirect_uri_given else None,
            scope=" ".join(req.scopes),
            nonce=req.nonce,
            code_challenge=req.code_challenge,
            code_challenge_method=req.code_challenge_method,
            auth_time=auth_time,
            acr=ACR_PASSWORD,
            amr=amr,
            sid=sid,
            max_age_requested=req.max_age is not None,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return code
