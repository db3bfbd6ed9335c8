"""The consent page: scopes in plain words; the answer is remembered per user and client."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from app import events
from app.db import get_db
from app.extensions import provider
from app.forms import ConsentForm
from app.interaction import (
    advance,
    current_user,
    drop_pending,
    expired_request,
    load_pending,
    update_pending,
)
from app.oauth.authorize import AuthorizationRequest, RedirectTarget
from app.oauth.claims import SCOPE_DESCRIPTIONS
from app.oauth.errors import AccessDenied
from app.store import save_consent

bp = Blueprint("consent", __name__)


@bp.route("/consent", methods=["GET", "POST"])
def consent() -> Response | str:
    form = ConsentForm()
    ix = request.values.get("ix") or ""
    entry = load_pending(ix)
    user = current_user()
    if entry is None or user is None:
        return expired_request()
    req = AuthorizationRequest.from_dict(entry["request"])
    client = provider().clients.get(req.client_id)
    if client is None:
        return expired_request()
    if form.validate_on_submit():
        if request.form.get("decision") != "allow":
            drop_pending(ix)
            events.record("consent.denied", user_id=user.id, client_id=client.id)
            exc = AccessDenied("The user denied the request.")
            exc.redirect = RedirectTarget(req.redirect_uri, req.state, req.response_mode)  # type: ignore[attr-defined]
            raise exc
        save_consent(get_db(), user.id, client.id, set(req.scopes))
        get_db().commit()
        update_pending(ix, consented=True)
        events.record(
            "consent.granted", user_id=user.id, client_id=client.id, scope=" ".join(req.scopes)
        )
        return advance(req, ix, consented=True)
    form.ix.data = ix
    scopes = [(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in req.scopes]
    return render_template("consent.html", form=form, client=client, scopes=scopes, user=user)
