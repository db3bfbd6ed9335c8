"""GET and POST /authorize: every refusal, the OIDC request parameters, and response modes.

RFC 6749 §4.1.2.1, RFC 7636, RFC 9207, RFC 9700 §4.1 and OpenID Connect Core §3.1.2.
"""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import (
    REDIRECT,
    assert_redirect_error,
    form_fields,
    pkce_pair,
    redirect_params,
)

METHODS = ["GET", "POST"]


def call(h, params, method="GET", browser=None):
    """One authorization request, redirects not followed; params may be a list of pairs."""
    browser = browser or requests.Session()
    if method == "GET":
        return browser.get(h.url("/authorize"), params=params, allow_redirects=False, timeout=10)
    return browser.post(h.url("/authorize"), data=params, allow_redirects=False, timeout=10)


def fresh(h, client_id, **extra):
    """Authorization parameters with a new PKCE pair; returns (params, verifier)."""
    verifier, challenge = pkce_pair()
    return h.authorize_params(client_id, challenge, **extra), verifier


def signed_in(h, user, client_id, **extra):
    """A browser signed in as ``user`` that consented; returns (browser, code, verifier, params)."""
    browser = requests.Session()
    params, verifier = fresh(h, client_id, **extra)
    query = redirect_params(h.sign_in(browser, user, params))
    assert "code" in query, query
    return browser, query["code"], verifier, params


def id_token_claims(h, client_id, secret, code, verifier) -> tuple[dict, str]:
    """Redeem a code; return the ID token's claims (verified against the JWKS) and the token."""
    resp = h.exchange(client_id, secret, code, verifier)
    assert resp.status_code == 200, resp.text
    token = resp.json()["id_token"]
    jwks = jwt.PyJWKSet.from_dict(requests.get(h.url("/jwks.json"), timeout=10).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(
        token, key.key, algorithms=["RS256", "ES256"], audience=client_id, issuer=h.issuer
    )
    return claims, token


def location_path(resp) -> str:
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    return urlsplit(resp.headers["Location"]).path


def assert_code(resp, state, issuer) -> str:
    """A successful redirect to the client: code, the same state, and iss (RFC 9207)."""
    assert resp.status_code == 302, (resp.status_code, resp.text[:300])
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    query = redirect_params(resp)
    assert "error" not in query, query
    assert query["code"]
    assert query.get("state") == state
    assert query["iss"] == issuer
    return query["code"]


def posted_form(resp) -> tuple[str, dict[str, str]]:
    """The action and fields of a response_mode=form_post page."""
    assert resp.status_code == 200, resp.text[:300]
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Cache-Control"] == "no-store"
    action = re.search(r'<form method="post" action="([^"]*)"', resp.text)
    assert action, resp.text
    return unescape(action.group(1)), form_fields(resp.text)


@pytest.fixture
def client(h):
    return h.create_client()


# --- requests that cannot be trusted: a page, never a redirect ---------------------------

UNTRUSTED = {
    "unknown client_id": lambda p: {**p, "client_id": "no-such-client"},
    "missing client_id": lambda p: {k: v for k, v in p.items() if k != "client_id"},
    "unregistered redirect_uri": lambda p: {**p, "redirect_uri": "https://evil.example/cb"},
    "redirect_uri with extra path": lambda p: {**p, "redirect_uri": REDIRECT + "/x"},
    "redirect_uri with extra query": lambda p: {**p, "redirect_uri": REDIRECT + "?a=1"},
    "redirect_uri differs in case": lambda p: {**p, "redirect_uri": REDIRECT.upper()},
    "missing redirect_uri for openid": lambda p: {
        k: v for k, v in p.items() if k != "redirect_uri"
    },
    "unregistered redirect_uri with form_post": lambda p: {
        **p,
        "redirect_uri": "https://evil.example/cb",
        "response_mode": "form_post",
    },
    "unknown client with a bad response_type": lambda p: {
        **p,
        "client_id": "no-such-client",
        "response_type": "token",
    },
    "repeated client_id": lambda p: [*p.items(), ("client_id", p["client_id"])],
    "repeated redirect_uri": lambda p: [*p.items(), ("redirect_uri", "https://evil.example/cb")],
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(UNTRUSTED))
def test_untrusted_request_shows_an_error_page_and_never_redirects(h, client, method, case):
    params, _ = fresh(h, client[0])
    resp = call(h, UNTRUSTED[case](params), method)
    assert resp.status_code == 400, resp.text[:300]
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Location" not in resp.headers
    assert "<form" not in resp.text  # nothing is posted anywhere either
    assert "evil.example" not in resp.text


def test_redirect_uri_may_be_omitted_outside_openid_with_one_registered(h, client):
    params, _ = fresh(h, client[0], scope="profile", redirect_uri=None, prompt="none")
    resp = call(h, params)
    assert_redirect_error(resp, "login_required", params["state"], h.issuer)
    assert resp.headers["Location"].startswith(REDIRECT + "?")


def test_redirect_uri_required_when_several_are_registered(h):
    client_id, _ = h.create_client(redirect_uris=[REDIRECT, "http://127.0.0.1:9/other"])
    params, _ = fresh(h, client_id, scope="profile", redirect_uri=None)
    resp = call(h, params)
    assert resp.status_code == 400
    assert "Location" not in resp.headers


# --- errors returned to the client with error, state and iss ----------------------------

REDIRECTED = [
    ("response_type=token", {"response_type": "token"}, "unsupported_response_type"),
    ("response_type=id_token", {"response_type": "id_token"}, "unsupported_response_type"),
    ("code id_token", {"response_type": "code id_token"}, "unsupported_response_type"),
    ("code token", {"response_type": "code token"}, "unsupported_response_type"),
    ("missing response_type", {"response_type": None}, "invalid_request"),
    ("unknown scope", {"scope": "openid frobnicate"}, "invalid_scope"),
    ("missing scope", {"scope": None}, "invalid_scope"),
    ("scope with a quote", {"scope": 'openid "x'}, "invalid_scope"),
    (
        "no code_challenge",
        {"code_challenge": None, "code_challenge_method": None},
        "invalid_request",
    ),
    ("method plain", {"code_challenge_method": "plain"}, "invalid_request"),
    ("method omitted means plain", {"code_challenge_method": None}, "invalid_request"),
    ("method S512", {"code_challenge_method": "S512"}, "invalid_request"),
    ("method without challenge", {"code_challenge": None}, "invalid_request"),
    ("challenge too short", {"code_challenge": "abc"}, "invalid_request"),
    ("challenge too long", {"code_challenge": "a" * 44}, "invalid_request"),
    ("challenge not base64url", {"code_challenge": "+" * 43}, "invalid_request"),
    ("response_mode fragment", {"response_mode": "fragment"}, "invalid_request"),
    ("response_mode query.jwt", {"response_mode": "query.jwt"}, "invalid_request"),
    ("request object", {"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    (
        "request_uri",
        {"request_uri": "urn:ietf:params:oauth:request_uri:x"},
        "request_uri_not_supported",
    ),
    ("registration", {"registration": "{}"}, "registration_not_supported"),
    ("prompt none with login", {"prompt": "none login"}, "invalid_request"),
    ("prompt none with consent", {"prompt": "consent none"}, "invalid_request"),
    ("max_age negative", {"max_age": "-1"}, "invalid_request"),
    ("max_age not a number", {"max_age": "soon"}, "invalid_request"),
    ("state too long", {"state": "s" * 2049}, "invalid_request"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("changes", "error"), [c[1:] for c in REDIRECTED], ids=[c[0] for c in REDIRECTED]
)
def test_invalid_request_is_redirected_with_error_state_and_iss(h, client, method, changes, error):
    params, _ = fresh(h, client[0], **changes)
    resp = call(h, params, method)
    query = assert_redirect_error(resp, error, params.get("state"), h.issuer)
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    assert query["error_description"]
    assert "code" not in query


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "name", ["response_type", "scope", "code_challenge", "nonce", "prompt", "response_mode"]
)
def test_repeated_parameter_is_invalid_request(h, client, method, name):
    params, _ = fresh(h, client[0], prompt="none", response_mode="query")
    resp = call(h, [*params.items(), (name, params[name])], method)
    assert_redirect_error(resp, "invalid_request", params["state"], h.issuer)


def test_repeated_state_is_invalid_request_without_state(h, client):
    params, _ = fresh(h, client[0])
    resp = call(h, [*params.items(), ("state", "other")])
    assert_redirect_error(resp, "invalid_request", None, h.issuer)


def test_public_client_must_use_pkce(h):
    client_id, secret = h.create_client(auth_method="none", grant_types=["authorization_code"])
    assert secret is None
    params, _ = fresh(h, client_id, code_challenge=None, code_challenge_method=None)
    assert_redirect_error(call(h, params), "invalid_request", params["state"], h.issuer)


def test_scope_beyond_the_client_registration_is_invalid_scope(h):
    client_id, _ = h.create_client(scope="openid")
    params, _ = fresh(h, client_id, scope="openid email")
    assert_redirect_error(call(h, params), "invalid_scope", params["state"], h.issuer)


def test_client_without_the_code_grant_is_unauthorized(h):
    client_id, _ = h.create_client(grant_types=["client_credentials"])
    params, _ = fresh(h, client_id)
    assert_redirect_error(call(h, params), "unauthorized_client", params["state"], h.issuer)


def test_confidential_client_may_opt_out_of_pkce(h):
    client_id, secret = h.create_client(require_pkce=False)
    user = h.create_user()
    browser = requests.Session()
    params = h.authorize_params(client_id, None)
    code = assert_code(h.sign_in(browser, user, params), params["state"], h.issuer)
    resp = h.exchange(client_id, secret, code, None)
    assert resp.status_code == 200, resp.text
    # a code_verifier for a code issued without a challenge is refused (RFC 9700 §2.1.1)
    params = h.authorize_params(client_id, None)
    code = assert_code(call(h, params, browser=browser), params["state"], h.issuer)
    verifier, _ = pkce_pair()
    resp = h.exchange(client_id, secret, code, verifier)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"


# --- prompt ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_prompt_none_without_session_is_login_required(h, client, method):
    params, _ = fresh(h, client[0], prompt="none")
    resp = call(h, params, method)
    assert_redirect_error(resp, "login_required", params["state"], h.issuer)
    assert resp.headers["Location"].startswith(REDIRECT + "?")


def test_prompt_none_signed_in_without_consent_is_consent_required(h, client):
    user = h.create_user()
    browser = requests.Session()
    params, _ = fresh(h, client[0])
    page = h.sign_in(browser, user, params, consent=None)
    assert page.status_code == 200 and urlsplit(page.url).path == "/consent"
    params, _ = fresh(h, client[0], prompt="none")
    resp = call(h, params, browser=browser)
    assert_redirect_error(resp, "consent_required", params["state"], h.issuer)


@pytest.mark.parametrize("method", METHODS)
def test_prompt_none_with_session_and_consent_returns_a_code(h, client, method):
    user = h.create_user()
    browser, *_ = signed_in(h, user, client[0])
    params, verifier = fresh(h, client[0], prompt="none")
    code = assert_code(call(h, params, method, browser), params["state"], h.issuer)
    claims, _ = id_token_claims(h, *client, code, verifier)
    assert claims["sub"] == user.id
    assert claims["nonce"] == params["nonce"]


def test_prompt_login_asks_for_the_password_again(h, client):
    user = h.create_user()
    browser, *_ = signed_in(h, user, client[0])
    params, verifier = fresh(h, client[0], prompt="login")
    resp = call(h, params, browser=browser)
    assert location_path(resp) == "/login"
    page = browser.get(h.url(resp.headers["Location"]), timeout=10)
    assert page.status_code == 200 and 'name="password"' in page.text
    fields = form_fields(page.text)
    fields.update(username=user.username, password="correct horse battery staple")
    resp = browser.post(h.url("/login"), data=fields, allow_redirects=False, timeout=10)
    code = assert_code(resp, params["state"], h.issuer)  # consent was given before
    assert id_token_claims(h, *client, code, verifier)[0]["sub"] == user.id


def test_prompt_consent_shows_the_consent_page_again(h, client):
    user = h.create_user()
    browser, *_ = signed_in(h, user, client[0])
    params, _ = fresh(h, client[0], prompt="consent")
    assert location_path(call(h, params, browser=browser)) == "/consent"


# --- max_age and auth_time ---------------------------------------------------------------


def test_max_age_zero_forces_a_new_sign_in_and_a_newer_auth_time(h, client):
    user = h.create_user()
    browser, code, verifier, _ = signed_in(h, user, client[0])
    first, _ = id_token_claims(h, *client, code, verifier)
    # OIDC Core §2: auth_time is in the ID token (Tessera always includes it)
    assert isinstance(first["auth_time"], int) and first["auth_time"] <= first["iat"]
    while int(time.time()) <= first["auth_time"]:  # let the clock reach the next second
        time.sleep(0.05)
    params, _ = fresh(h, client[0], prompt="none", max_age="0")
    resp = call(h, params, browser=browser)
    assert_redirect_error(resp, "login_required", params["state"], h.issuer)
    params, verifier = fresh(h, client[0], max_age="0")
    assert location_path(call(h, params, browser=browser)) == "/login"
    code = assert_code(h.sign_in(browser, user, params), params["state"], h.issuer)
    second, _ = id_token_claims(h, *client, code, verifier)
    assert second["auth_time"] > first["auth_time"]
    assert second["auth_time"] <= second["iat"]


def test_recent_sign_in_satisfies_a_larger_max_age(h, client):
    user = h.create_user()
    browser, *_ = signed_in(h, user, client[0])
    params, verifier = fresh(h, client[0], prompt="none", max_age="3600")
    code = assert_code(call(h, params, browser=browser), params["state"], h.issuer)
    claims, _ = id_token_claims(h, *client, code, verifier)
    # OIDC Core §3.1.2.1: with max_age, auth_time is required
    assert time.time() - 3600 < claims["auth_time"] <= claims["iat"]


# --- hints -------------------------------------------------------------------------------


@pytest.mark.parametrize("hint", ["alice@example.com", '"><script>alert(1)</script>'])
def test_login_hint_prefills_the_username(h, client, hint):
    browser = requests.Session()
    params, _ = fresh(h, client[0], login_hint=hint)
    resp = call(h, params, browser=browser)
    assert location_path(resp) == "/login"
    page = browser.get(h.url(resp.headers["Location"]), timeout=10)
    assert page.status_code == 200
    assert form_fields(page.text)["username"] == hint
    assert "<script>alert(1)" not in page.text


@pytest.fixture
def two_users(h, client):
    """Users A and B signed in with their own browsers; A's ID token."""
    a, b = h.create_user(), h.create_user()
    browser_a, code, verifier, _ = signed_in(h, a, client[0])
    _, token_a = id_token_claims(h, *client, code, verifier)
    browser_b, *_ = signed_in(h, b, client[0])
    return browser_a, token_a, browser_b


def test_id_token_hint_for_the_signed_in_user_returns_a_code(h, client, two_users):
    browser_a, token_a, _ = two_users
    params, _ = fresh(h, client[0], prompt="none", id_token_hint=token_a)
    assert_code(call(h, params, browser=browser_a), params["state"], h.issuer)


def test_id_token_hint_for_another_user_requires_login(h, client, two_users):
    _, token_a, browser_b = two_users
    # OIDC Core §3.1.2.6: prompt=none and the hinted user is not the one signed in
    params, _ = fresh(h, client[0], prompt="none", id_token_hint=token_a)
    resp = call(h, params, browser=browser_b)
    assert_redirect_error(resp, "login_required", params["state"], h.issuer)
    # without prompt=none the user is asked to sign in again
    params, _ = fresh(h, client[0], id_token_hint=token_a)
    assert location_path(call(h, params, browser=browser_b)) == "/login"


def test_id_token_hint_is_checked_against_whoever_signs_in(h, client):
    """OIDC Core §3.1.2.2: signing in as someone other than the hinted user is an error."""
    a, b = h.create_user(), h.create_user()
    _, code, verifier, _ = signed_in(h, a, client[0])
    _, token_a = id_token_claims(h, *client, code, verifier)
    params, _ = fresh(h, client[0], id_token_hint=token_a)
    resp = h.sign_in(requests.Session(), b, params)
    assert_redirect_error(resp, "login_required", params["state"], h.issuer)
    params, _ = fresh(h, client[0], id_token_hint=token_a)
    assert_code(h.sign_in(requests.Session(), a, params), params["state"], h.issuer)


def test_id_token_hint_without_a_session_is_login_required(h, client, two_users):
    _, token_a, _ = two_users
    params, _ = fresh(h, client[0], prompt="none", id_token_hint=token_a)
    assert_redirect_error(call(h, params), "login_required", params["state"], h.issuer)


def _foreign_token(token: str) -> str:
    """The same claims and kid, signed by a key that is not ours."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": header["kid"]})


def _unsigned_token(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, None, algorithm="none")


@pytest.mark.parametrize("kind", ["garbage", "three dots", "foreign key", "alg none", "access"])
def test_invalid_id_token_hint_is_invalid_request(h, client, two_users, kind):
    browser_a, token_a, _ = two_users
    if kind == "access":
        params, verifier = fresh(h, client[0], prompt="none")
        code = assert_code(call(h, params, browser=browser_a), params["state"], h.issuer)
        hint = h.exchange(*client, code, verifier).json()["access_token"]
    elif kind == "foreign key":
        hint = _foreign_token(token_a)
    elif kind == "alg none":
        hint = _unsigned_token(token_a)
    else:
        hint = {"garbage": "garbage", "three dots": "a.b.c"}[kind]
    params, _ = fresh(h, client[0], prompt="none", id_token_hint=hint)
    resp = call(h, params, browser=browser_a)
    assert_redirect_error(resp, "invalid_request", params["state"], h.issuer)


# --- other OIDC parameters, state and iss ------------------------------------------------


def test_display_ui_locales_and_acr_values_are_accepted(h, client):
    user = h.create_user()
    browser, *_ = signed_in(h, user, client[0])
    for display in ("page", "popup", "touch", "wap"):
        params, verifier = fresh(
            h,
            client[0],
            prompt="none",
            display=display,
            ui_locales="fr-CA fr en",
            acr_values="1 urn:mace:incommon:iap:silver",
        )
        code = assert_code(call(h, params, browser=browser), params["state"], h.issuer)
    claims, _ = id_token_claims(h, *client, code, verifier)
    assert claims["acr"] == "1"  # what Tessera can assert: a password
    # the same parameters do not stand in the way of the login page either
    params, _ = fresh(h, client[0], display="touch", ui_locales="de", acr_values="1")
    assert location_path(call(h, params)) == "/login"


def test_success_without_state_carries_no_state_but_iss(h, client):
    user = h.create_user()
    browser, *_ = signed_in(h, user, client[0])
    params, _ = fresh(h, client[0], prompt="none", state=None)
    assert_code(call(h, params, browser=browser), None, h.issuer)
    params, _ = fresh(h, client[0], state=None, scope="openid frobnicate")
    assert_redirect_error(call(h, params), "invalid_scope", None, h.issuer)


# --- response_mode=form_post -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"scope": "openid frobnicate"}, "invalid_scope"),
        ({"prompt": "none"}, "login_required"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_form_post_errors_are_posted_not_redirected(h, client, changes, error):
    params, _ = fresh(h, client[0], response_mode="form_post", **changes)
    action, fields = posted_form(call(h, params))
    assert action == REDIRECT
    assert fields["error"] == error
    assert fields["state"] == params["state"]
    assert fields["iss"] == h.issuer
    assert "code" not in fields


def test_form_post_success_posts_code_state_and_iss(h, client):
    user = h.create_user()
    browser, *_ = signed_in(h, user, client[0])
    params, verifier = fresh(h, client[0], prompt="none", response_mode="form_post")
    resp = call(h, params, "POST", browser)
    action, fields = posted_form(resp)
    assert action == REDIRECT
    assert fields["state"] == params["state"] and fields["iss"] == h.issuer
    # the auto-submit script runs only under the page's CSP nonce
    nonce = re.search(r'<script nonce="([^"]+)"', resp.text).group(1)
    assert f"'nonce-{nonce}'" in resp.headers["Content-Security-Policy"]
    claims, _ = id_token_claims(h, *client, fields["code"], verifier)
    assert claims["sub"] == user.id
