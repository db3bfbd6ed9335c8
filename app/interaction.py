"""The browser side of an authorization: who is signed in, pending requests, next step.

A validated request waits in the session under a random interaction id (``ix``)
while the user signs in or consents; ``advance`` decides what comes next.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from flask import Response, g, redirect, session, url_for

from app import events
from app.db import get_db
from app.extensions import provider
from app.models import User
from app.oauth.authorize import AuthorizationRequest, RedirectTarget, issue_code, needs_login
from app.oauth.errors import ConsentRequired, LoginRequired, OAuthError
from app.security import random_token
from app.store import find_consent, find_user
from app.web import authorization_response, error_page

MAX_PENDING = 8


def current_user() -> User | None:
    """The signed-in, active user; looked up once per request."""
    if "user" in g:
        return g.user
    uid = session.get("uid")
    user = find_user(get_db(), uid) if uid else None
    g.user = user if user is not None and user.is_active else None
    return g.user


def sign_in(user: User) -> None:
    """Start a fresh sign-in session: new cookie id (no fixation), new sid."""
    pending = session.get("pending", {})
    session.rotate()  # type: ignore[attr-defined]
    session.clear()
    now = time.time()
    session.update(
        uid=user.id,
        login_at=now,
        auth_time=int(now),
        sid=random_token(16),
        amr=["pwd"],
        pending=pending,
    )
    g.user = user
    events.record("login.succeeded", user_id=user.id)


def save_pending(req: AuthorizationRequest) -> str:
    ix = random_token(12)
    pending = dict(session.get("pending", {}))
    while len(pending) >= MAX_PENDING:
        pending.pop(min(pending, key=lambda k: pending[k]["request"]["created_at"]))
    pending[ix] = {"request": req.to_dict(), "consented": False}
    session["pending"] = pending
    return ix


def load_pending(ix: str | None) -> dict[str, Any] | None:
    if not ix:
        return None
    return session.get("pending", {}).get(ix)


def update_pending(ix: str, **changes: Any) -> None:
    pending = dict(session.get("pending", {}))
    if ix in pending:
        pending[ix] = {**pending[ix], **changes}
        session["pending"] = pending


def drop_pending(ix: str | None) -> None:
    pending = dict(session.get("pending", {}))
    if ix and pending.pop(ix, None) is not None:
        session["pending"] = pending


def expired_request() -> Response:
    return error_page(
        400,
        "This sign-in request has expired",
        "Go back to the application and start signing in again.",
    )


def advance(req: AuthorizationRequest, ix: str | None, consented: bool = False) -> Response:
    """Next step of an authorization: sign in, consent, or return a code to the client."""
    p = provider()
    client = p.clients.get(req.client_id)
    if client is None or req.redirect_uri not in client.redirect_uris:
        drop_pending(ix)
        return expired_request()
    target = RedirectTarget(req.redirect_uri, req.state, req.response_mode)
    user = current_user()
    try:
        if needs_login(req, user.id if user else None, session.get("login_at")):
            if "none" in req.prompt:
                raise LoginRequired()
            ix = ix or save_pending(req)
            query = {"ix": ix, **({"login_hint": req.login_hint} if req.login_hint else {})}
            return redirect(url_for("login.login") + "?" + urlencode(query))
        assert user is not None
        if req.id_token_hint_sub is not None and req.id_token_hint_sub != user.id:
            # OIDC Core §3.1.2.2: whoever signed in must be the user the hint names.
            raise LoginRequired("The signed-in user is not the one id_token_hint names.")
        scopes = set(req.scopes)
        # First-party clients skip consent unless they ask for it with prompt=consent.
        if (not client.first_party or "consent" in req.prompt) and not consented:
            consent = find_consent(get_db(), user.id, client.id)
            if "consent" in req.prompt or consent is None or not consent.covers(scopes):
                if "none" in req.prompt:
                    raise ConsentRequired()
                ix = ix or save_pending(req)
                return redirect(url_for("consent.consent", ix=ix))
    except OAuthError as exc:
        drop_pending(ix)
        exc.redirect = target  # type: ignore[attr-defined]
        raise
    code = issue_code(
        get_db(),
        req,
        user_id=user.id,
        auth_time=int(session["auth_time"]),
        sid=session.get("sid"),
        amr=session.get("amr"),
        ttl=p.config["AUTH_CODE_TTL"],
    )
    get_db().commit()
    drop_pending(ix)
    events.record(
        "authorization.code_issued",
        user_id=user.id,
        client_id=client.id,
        scope=" ".join(req.scopes),
    )
    return authorization_response(
        req.redirect_uri, req.response_mode, {"code": code, "state": req.state}, p.issuer
    )
