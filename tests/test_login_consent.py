"""The login and consent pages: CSRF, failed sign-ins, the session cookie, remembered
consent, first-party clients, the login rate limit and password rehashing."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

import pytest
import requests
from argon2 import PasswordHasher

from tests.helpers import (
    PASSWORD,
    REDIRECT,
    Harness,
    assert_redirect_error,
    build_app,
    form_fields,
    pkce_pair,
    redirect_params,
)

COOKIE = "tessera_session"


def call(h, params, browser=None):
    browser = browser or requests.Session()
    return browser.get(h.url("/authorize"), params=params, allow_redirects=False, timeout=10)


def fresh(h, client_id, **extra):
    _, challenge = pkce_pair()
    return h.authorize_params(client_id, challenge, **extra)


def login_form(h, browser, client_id, **extra) -> dict[str, str]:
    """Start an authorization without a session; return the login form's fields."""
    resp = call(h, fresh(h, client_id, **extra), browser)
    assert urlsplit(resp.headers["Location"]).path == "/login"
    page = browser.get(h.url(resp.headers["Location"]), timeout=10)
    assert page.status_code == 200
    fields = form_fields(page.text)
    assert fields["csrf_token"] and fields["ix"]
    return fields


def post_login(h, browser, fields, username, password):
    data = {**fields, "username": username, "password": password}
    return browser.post(h.url("/login"), data=data, allow_redirects=False, timeout=10)


def consent_page(h, browser, user, client_id, **extra):
    """Sign in and stop at the consent page; returns (page, authorization params)."""
    params = fresh(h, client_id, **extra)
    page = h.sign_in(browser, user, params, consent=None)
    assert page.status_code == 200 and urlsplit(page.url).path == "/consent", page.text[:300]
    return page, params


def assert_signed_out(h, browser, client_id):
    """prompt=none proves there is no sign-in in this browser."""
    params = fresh(h, client_id, prompt="none")
    assert_redirect_error(call(h, params, browser), "login_required", params["state"], h.issuer)


def assert_code(resp, state, issuer):
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    query = redirect_params(resp)
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    assert query["code"] and query.get("state") == state and query["iss"] == issuer, query


def assert_form_refused(resp):
    assert resp.status_code == 400, resp.text[:300]
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Location" not in resp.headers


@pytest.fixture
def client(h):
    return h.create_client(name="Acme Notes")


# --- CSRF ------------------------------------------------------------------------------


def _forge(h, fields, kind, client_id):
    fields = dict(fields)
    if kind == "missing":
        del fields["csrf_token"]
    elif kind == "wrong":
        fields["csrf_token"] = fields["csrf_token"][:-4] + "AAAA"
    else:  # a valid token, but from another browser's session
        fields["csrf_token"] = login_form(h, requests.Session(), client_id)["csrf_token"]
    return fields


@pytest.mark.parametrize("kind", ["missing", "wrong", "from another session"])
def test_login_without_a_valid_csrf_token_is_refused(h, client, kind):
    user = h.create_user()
    browser = requests.Session()
    fields = _forge(h, login_form(h, browser, client[0]), kind, client[0])
    before = browser.cookies.get(COOKIE)
    resp = post_login(h, browser, fields, user.username, PASSWORD)
    assert_form_refused(resp)
    assert browser.cookies.get(COOKIE) == before
    assert_signed_out(h, browser, client[0])


@pytest.mark.parametrize("kind", ["missing", "wrong", "from another session"])
def test_consent_without_a_valid_csrf_token_is_refused(h, client, kind):
    user = h.create_user()
    browser = requests.Session()
    page, params = consent_page(h, browser, user, client[0])
    good = {**form_fields(page.text), "decision": "allow"}
    resp = browser.post(
        h.url("/consent"), data=_forge(h, good, kind, client[0]), allow_redirects=False
    )
    assert_form_refused(resp)
    # nothing was granted ...
    check = fresh(h, client[0], prompt="none")
    assert_redirect_error(call(h, check, browser), "consent_required", check["state"], h.issuer)
    # ... and the genuine form still completes the pending request
    resp = browser.post(h.url("/consent"), data=good, allow_redirects=False, timeout=10)
    assert_code(resp, params["state"], h.issuer)


# --- failed and successful sign-ins ------------------------------------------------------


def test_failed_logins_show_the_same_error_for_every_cause(h, client):
    user = h.create_user()
    inactive = h.create_user(is_active=False)
    browser = requests.Session()
    fields = login_form(h, browser, client[0])
    before = browser.cookies.get(COOKIE)
    messages = set()
    for username, password in [
        (user.username, "wrong password"),
        (user.email, "wrong password"),
        ("nobody-" + secrets.token_hex(4), PASSWORD),
        (inactive.username, PASSWORD),
    ]:
        resp = post_login(h, browser, fields, username, password)
        assert resp.status_code == 401, resp.text[:300]
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "Location" not in resp.headers
        again = form_fields(resp.text)
        assert again["ix"] == fields["ix"] and again["password"] == ""
        messages.add(re.search(r'role="alert">([^<]*)<', resp.text).group(1))
    assert len(messages) == 1, messages  # no user enumeration
    assert "incorrect" in messages.pop()
    assert browser.cookies.get(COOKIE) == before
    assert_signed_out(h, browser, client[0])
    # the form shown again still signs the user in
    resp = post_login(h, browser, again, user.username, PASSWORD)
    assert urlsplit(resp.headers["Location"]).path == "/consent"


@pytest.mark.parametrize(("username", "password"), [("", PASSWORD), ("someone", "")])
def test_empty_fields_are_refused(h, client, username, password):
    browser = requests.Session()
    resp = post_login(h, browser, login_form(h, browser, client[0]), username, password)
    assert resp.status_code == 401
    assert "Please fill in both fields." in resp.text
    assert_signed_out(h, browser, client[0])


def test_login_by_email_works_in_any_case(h, client):
    user = h.create_user()
    browser = requests.Session()
    fields = login_form(h, browser, client[0])
    resp = post_login(h, browser, fields, user.email.upper(), PASSWORD)
    assert urlsplit(resp.headers["Location"]).path == "/consent"


def test_login_without_a_pending_request_goes_home(h):
    user = h.create_user()
    browser = requests.Session()
    page = browser.get(h.url("/login?ix=unknown"), timeout=10)
    resp = post_login(h, browser, form_fields(page.text), user.username, PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    home = browser.get(h.url("/"), timeout=10)
    assert user.username in home.text


# --- the session cookie ------------------------------------------------------------------


def test_session_id_changes_at_login_and_the_old_one_is_dead(h, client):
    user = h.create_user()
    browser = requests.Session()
    fields = login_form(h, browser, client[0])
    planted = browser.cookies.get(COOKIE)
    assert planted
    signed = post_login(h, browser, fields, user.username, PASSWORD)
    assert signed.status_code == 302
    assert browser.cookies.get(COOKIE) not in (None, planted)
    # whoever knew the id from before the login is not signed in
    params = fresh(h, client[0], prompt="none")
    resp = requests.get(
        h.url("/authorize"),
        params=params,
        headers={"Cookie": f"{COOKIE}={planted}"},
        allow_redirects=False,
        timeout=10,
    )
    assert_redirect_error(resp, "login_required", params["state"], h.issuer)
    # the new session carries the pending request on to the consent page
    assert urlsplit(signed.headers["Location"]).path == "/consent"
    page = browser.get(h.url(signed.headers["Location"]), allow_redirects=False, timeout=10)
    assert page.status_code == 200 and 'name="decision"' in page.text


def _cookie_attributes(header: str) -> tuple[str, str, set[str]]:
    parts = [p.strip() for p in header.split(";")]
    name, _, value = parts[0].partition("=")
    return name, value, {p.split("=")[0].lower() if "=" in p else p.lower() for p in parts[1:]}


def test_cookie_flags_on_http_loopback(h, client):
    resp = call(h, fresh(h, client[0]))
    page = requests.get(h.url(resp.headers["Location"]), timeout=10)
    header = page.headers["Set-Cookie"]
    name, value, attrs = _cookie_attributes(header)
    assert name == COOKIE and len(value) >= 32
    assert "httponly" in attrs
    assert "samesite=lax" in header.lower()
    assert "path=/" in header.lower()
    assert "secure" not in attrs  # plain http on loopback still works
    assert "domain" not in attrs


def test_https_issuer_gets_a_secure_host_prefixed_cookie(tmp_path, keys_dir):
    issuer = "https://id.example.org"
    app = build_app(tmp_path, keys_dir, 443, ISSUER=issuer)
    user = Harness(app, issuer).create_user()
    web = app.test_client()
    page = web.get("/login", base_url=issuer)
    name, first, attrs = _cookie_attributes(page.headers["Set-Cookie"])
    assert name == "__Host-tessera"
    assert {"secure", "httponly", "path"} <= attrs and "domain" not in attrs
    assert "samesite=lax" in page.headers["Set-Cookie"].lower()
    assert "max-age=31536000" in page.headers["Strict-Transport-Security"]
    fields = form_fields(page.get_data(as_text=True))
    fields.update(username=user.username, password=PASSWORD)
    resp = web.post("/login", data=fields, base_url=issuer)
    assert resp.status_code == 302
    name, second, attrs = _cookie_attributes(resp.headers["Set-Cookie"])
    assert name == "__Host-tessera" and "secure" in attrs and second != first
    assert user.username in web.get("/", base_url=issuer).get_data(as_text=True)


# --- consent -----------------------------------------------------------------------------


def test_consent_page_lists_the_scopes_in_plain_words(h, client):
    user = h.create_user()
    page, _ = consent_page(h, requests.Session(), user, client[0], scope="openid email phone")
    assert "Acme Notes" in page.text
    for words in ("Sign you in and know who you are", "Your e-mail address", "Your phone number"):
        assert words in page.text
    assert "Your postal address" not in page.text
    assert "Deny" in page.text and "Allow" in page.text


@pytest.mark.parametrize("mode", ["query", "form_post"])
def test_deny_returns_access_denied_with_state_and_iss(h, client, mode):
    user = h.create_user()
    browser = requests.Session()
    page, params = consent_page(h, browser, user, client[0], response_mode=mode)
    fields = {**form_fields(page.text), "decision": "deny"}
    resp = browser.post(h.url("/consent"), data=fields, allow_redirects=False, timeout=10)
    if mode == "query":
        query = assert_redirect_error(resp, "access_denied", params["state"], h.issuer)
        assert "code" not in query
    else:
        assert resp.status_code == 200 and "Location" not in resp.headers
        posted = form_fields(resp.text)
        assert posted["error"] == "access_denied"
        assert posted["state"] == params["state"] and posted["iss"] == h.issuer
    # nothing remembered, and the request cannot be answered again
    check = fresh(h, client[0], prompt="none")
    assert_redirect_error(call(h, check, browser), "consent_required", check["state"], h.issuer)
    resp = browser.post(h.url("/consent"), data={**fields, "decision": "allow"}, timeout=10)
    assert resp.status_code == 400


def test_consent_is_remembered_per_user_client_and_scopes(h, client):
    user, other_user = h.create_user(), h.create_user()
    other_client, _ = h.create_client()
    browser = requests.Session()
    params = fresh(h, client[0], scope="openid profile email")
    assert_code(h.sign_in(browser, user, params), params["state"], h.issuer)
    for scope in ("openid profile email", "openid email"):  # the same or fewer: no page
        params = fresh(h, client[0], scope=scope)
        assert_code(call(h, params, browser), params["state"], h.issuer)
    wider = fresh(h, client[0], scope="openid profile email phone")
    assert urlsplit(call(h, wider, browser).headers["Location"]).path == "/consent"
    another = fresh(h, other_client)
    assert urlsplit(call(h, another, browser).headers["Location"]).path == "/consent"
    consent_page(h, requests.Session(), other_user, client[0])
    # granting the wider set keeps the earlier scopes too
    assert_code(h.sign_in(browser, user, wider), wider["state"], h.issuer)
    for scope in ("openid phone", "openid profile email phone"):
        params = fresh(h, client[0], scope=scope, prompt="none")
        assert_code(call(h, params, browser), params["state"], h.issuer)


def test_first_party_client_skips_consent(h):
    client_id, _ = h.create_client(first_party=True)
    user = h.create_user()
    browser = requests.Session()
    params = fresh(h, client_id, scope="openid profile email phone address")
    assert_code(h.sign_in(browser, user, params, consent=None), params["state"], h.issuer)
    params = fresh(h, client_id, prompt="none")
    assert_code(call(h, params, browser), params["state"], h.issuer)


def test_first_party_client_asking_prompt_consent_gets_the_consent_page(h):
    client_id, _ = h.create_client(first_party=True)
    user = h.create_user()
    browser = requests.Session()
    params = fresh(h, client_id)
    assert_code(h.sign_in(browser, user, params, consent=None), params["state"], h.issuer)
    params = fresh(h, client_id, prompt="consent")
    assert urlsplit(call(h, params, browser).headers["Location"]).path == "/consent"


def test_consent_page_needs_a_pending_request_and_a_session(h, client):
    user = h.create_user()
    browser = requests.Session()
    consent_page(h, browser, user, client[0])
    for url in ("/consent", "/consent?ix=unknown"):
        resp = browser.get(h.url(url), timeout=10)
        assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("text/html")


# --- rate limit and password rehash ------------------------------------------------------


def _random_ip() -> str:
    """A fresh client address, so counts left in a shared store by an earlier run never matter."""
    return "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))


def test_failed_logins_are_rate_limited_per_ip_and_per_account(tmp_path, keys_dir):
    app = build_app(tmp_path, keys_dir, 5000, RATELIMIT_LOGIN="3 per minute")
    made = Harness(app, "http://127.0.0.1:5000")
    victim, bystander, regular = made.create_user(), made.create_user(), made.create_user()
    web = app.test_client()

    def attempt(ip: str, user, password="wrong password"):
        # a new form each time: a successful sign-in starts a new session and CSRF token
        token = form_fields(web.get("/login").get_data(as_text=True))["csrf_token"]
        data = {"csrf_token": token, "username": user.username, "password": password}
        return web.post("/login", data=data, environ_base={"REMOTE_ADDR": ip})

    ip = _random_ip()
    for _ in range(3):
        assert attempt(ip, victim).status_code == 401
    limited = attempt(ip, victim, PASSWORD)  # even the right password is not tried now
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 61  # a minute's window, rounded up
    assert limited.headers["Content-Type"].startswith("text/html")  # a page for a person
    assert COOKIE not in limited.headers.get("Set-Cookie", "")
    # the same account from elsewhere is limited too; another account from elsewhere is not
    assert attempt(_random_ip(), victim).status_code == 429
    assert attempt(_random_ip(), bystander).status_code == 401
    # successful sign-ins do not count against the limit
    ip = _random_ip()
    for _ in range(4):
        assert attempt(ip, regular, PASSWORD).status_code == 302


def _stored_hash(h, user_id: str) -> str:
    from app.db import get_db
    from app.models import User

    with h.app.app_context():
        return get_db().get(User, user_id).password_hash


def _set_hash(h, user_id: str, value: str) -> None:
    from app.db import get_db
    from app.models import User

    with h.app.app_context():
        db = get_db()
        db.get(User, user_id).password_hash = value
        db.commit()


def test_password_is_rehashed_at_login_when_parameters_change(h, client):
    user = h.create_user()
    old = PasswordHasher(memory_cost=2048, time_cost=2, parallelism=2).hash(PASSWORD)
    _set_hash(h, user.id, old)
    browser = requests.Session()
    fields = login_form(h, browser, client[0])
    assert post_login(h, browser, fields, user.username, "wrong password").status_code == 401
    assert _stored_hash(h, user.id) == old  # a failed attempt changes nothing
    assert post_login(h, browser, fields, user.username, PASSWORD).status_code == 302
    stored = _stored_hash(h, user.id)
    cfg = h.app.config
    wanted = "m={},t={},p={}".format(
        cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_TIME_COST"], cfg["ARGON2_PARALLELISM"]
    )
    assert stored.startswith(f"$argon2id$v=19${wanted}$"), stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_current_hash_is_left_alone_at_login(h, client):
    user = h.create_user()
    before = _stored_hash(h, user.id)
    browser = requests.Session()
    fields = login_form(h, browser, client[0])
    assert post_login(h, browser, fields, user.username, PASSWORD).status_code == 302
    assert _stored_hash(h, user.id) == before
