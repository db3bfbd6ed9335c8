"""The sign-in page. The password is checked outside any database transaction."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from app import events
from app.db import get_db
from app.extensions import limiter, login_account_key, provider
from app.forms import LoginForm, LogoutForm
from app.interaction import advance, current_user, load_pending, sign_in
from app.models import User
from app.oauth.authorize import AuthorizationRequest
from app.store import find_user_by_login

bp = Blueprint("login", __name__)


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _failed(resp: Response) -> bool:
    return resp.status_code != 302


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
@limiter.limit(_login_limit, key_func=login_account_key, methods=["POST"], deduct_when=_failed)
def login() -> Response | str:
    form = LoginForm()
    ix = request.values.get("ix") or form.ix.data
    if request.method == "GET":
        form.ix.data = ix
        form.username.data = request.args.get("login_hint", "")[:254]
    error = None
    if form.validate_on_submit():
        user = _check_password(form.username.data or "", form.password.data or "")
        if user is not None:
            sign_in(user)
            entry = load_pending(ix)
            if entry is not None:
                # Straight on to consent or the client: no extra hop through /authorize.
                req = AuthorizationRequest.from_dict(entry["request"])
                return advance(req, ix, consented=entry.get("consented", False))
            return redirect(url_for("login.home"))
        error = "The username or password is incorrect."
        events.record("login.failed", login=(form.username.data or "")[:64])
    elif request.method == "POST":
        error = "Please fill in both fields."
    status = 401 if error and request.method == "POST" else 200
    return render_template("login.html", form=form, error=error), status


def _check_password(login: str, password: str) -> User | None:
    """Verify without holding a transaction open during the argon2 work."""
    p = provider()
    db = get_db()
    user = find_user_by_login(db, login)
    stored = user.password_hash if user is not None and user.is_active else None
    if user is not None:
        db.expunge(user)  # keep its loaded fields; no reload after the rollback
    db.rollback()  # end the read transaction before hashing
    if not p.passwords.verify(stored, password) or user is None:
        return None
    if p.passwords.needs_rehash(stored or ""):
        user = db.merge(user)
        user.password_hash = p.passwords.hash(password)
        db.commit()
    return user


@bp.get("/")
def home() -> str:
    return render_template("home.html", user=current_user(), form=LogoutForm())


@bp.post("/logout")
def logout() -> Response:
    form = LogoutForm()
    if form.validate_on_submit() and session.get("uid"):
        events.record("logout", user_id=session.get("uid"))
        session.clear()
        g.pop("user", None)
    return redirect(url_for("login.home"))
