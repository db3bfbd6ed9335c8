"""Platform behaviour over HTTP: security headers, discovery, JWKS and signing keys,
health probes, proxy headers and error responses."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import request

from app.keys import generate_key_file
from tests.helpers import (
    PASSWORD,
    REDIRECT,
    Harness,
    build_app,
    form_fields,
    pkce_pair,
    redirect_params,
)

OIDC_SCOPES = {"openid", "profile", "email", "address", "phone", "offline_access"}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


# -- helpers ---------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int, size: int | None = None) -> str:
    return b64url(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


def thumbprint(members: dict[str, str]) -> str:
    """RFC 7638 §3: required members only, sorted, no whitespace, SHA-256, base64url."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[members["kty"]]
    canonical = "{" + ",".join(f'"{m}":"{members[m]}"' for m in required) + "}"
    return b64url(hashlib.sha256(canonical.encode()).digest())


def pem_members(path: Path) -> dict[str, str]:
    """The public JWK members of a PEM private key, computed from its numbers."""
    public = serialization.load_pem_private_key(path.read_bytes(), None).public_key()
    numbers = public.public_numbers()
    if isinstance(public, rsa.RSAPublicKey):
        return {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
    return {"kty": "EC", "crv": "P-256", "x": _uint(numbers.x, 32), "y": _uint(numbers.y, 32)}


def csp(resp) -> dict[str, str]:
    policy = resp.headers.get("Content-Security-Policy", "")
    out = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            out[name.lower()] = value.strip()
    return out


def assert_security_headers(resp, hsts: bool = False) -> None:
    directives = csp(resp)
    assert directives.get("frame-ancestors") == "'none'", resp.headers
    assert "form-action" not in directives  # it would block the redirect back to the client
    assert resp.headers.get("X-Frame-Options") == "DENY"
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    assert resp.headers.get("Referrer-Policy") in ("no-referrer", "same-origin", "strict-origin")
    if hsts:
        value = resp.headers.get("Strict-Transport-Security", "")
        max_age = int(value.split("max-age=")[1].split(";")[0])
        assert max_age >= 31536000, value
    else:
        assert "Strict-Transport-Security" not in resp.headers


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def client_credentials(client, harness: Harness) -> tuple[str, dict[str, str]]:
    """A client_credentials access token from ``client`` (a Flask test client), and the
    client's Basic authorization header."""
    auth = basic(*harness.create_client(grant_types=["client_credentials"]))
    resp = client.post("/token", data={"grant_type": "client_credentials"}, headers=auth)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["access_token"], auth


def verify_with_jwks(token: str, jwks: dict, issuer: str) -> dict:
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert header["alg"] == jwk["alg"]
    key = jwt.PyJWK.from_dict(jwk)
    return jwt.decode(token, key.key, algorithms=[jwk["alg"]], audience=issuer, issuer=issuer)


@pytest.fixture(scope="module")
def https_app(tmp_path_factory, keys_dir):
    return build_app(
        tmp_path_factory.mktemp("https"), keys_dir, 443, ISSUER="https://id.example.com"
    )


# -- security headers ------------------------------------------------------------------

HTTP_CASES = [
    ("GET", "/login", {}, 200),  # a page
    ("GET", "/authorize", {}, 400),  # an HTML error page
    ("GET", "/health/live", {}, 200),  # JSON
    ("GET", "/.well-known/openid-configuration", {}, 200),  # served before Flask
    ("GET", "/jwks.json", {}, 200),
    ("POST", "/token", {"data": {"grant_type": "client_credentials"}}, 401),
    ("GET", "/userinfo", {}, 401),
    ("GET", "/no-such-page", {}, 404),
    ("DELETE", "/token", {}, 405),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), HTTP_CASES)
def test_security_headers_on_every_kind_of_response(h, method, path, kwargs, status):
    resp = requests.request(method, h.url(path), timeout=10, **kwargs)
    assert resp.status_code == status, resp.text
    assert_security_headers(resp, hsts=False)


def test_security_headers_on_fast_path_token_response(h):
    client_id, secret = h.create_client(grant_types=["client_credentials"])
    resp = requests.post(
        h.url("/token"), data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert resp.status_code == 200, resp.text
    assert_security_headers(resp, hsts=False)
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), HTTP_CASES)
def test_hsts_when_the_issuer_is_https(https_app, method, path, kwargs, status):
    resp = https_app.test_client().open(path, method=method, **kwargs)
    assert resp.status_code == status
    assert_security_headers(resp, hsts=True)


def test_form_post_page_runs_only_its_own_script_and_may_post_to_the_client(h):
    user = h.create_user()
    client_id, _ = h.create_client()
    params = h.authorize_params(client_id, pkce_pair()[1], response_mode="form_post")
    resp = h.sign_in(requests.Session(), user, params)
    assert resp.status_code == 200, resp.text
    assert f'action="{REDIRECT}"' in resp.text
    assert form_fields(resp.text)["state"] == params["state"]
    directives = csp(resp)
    nonce = directives["script-src"].removeprefix("'nonce-").removesuffix("'")
    assert directives["script-src"] == f"'nonce-{nonce}'" and len(nonce) >= 16
    assert f'<script nonce="{nonce}">' in resp.text
    assert "form-action" not in directives
    assert_security_headers(resp)


# -- discovery -------------------------------------------------------------------------

WELL_KNOWN = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
ENDPOINTS = [
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "registration_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
]


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_discovery_document(h, path):
    resp = requests.get(h.url(path), timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    meta = resp.json()
    assert meta["issuer"] == h.issuer
    for name in ENDPOINTS:
        assert meta[name].startswith(h.issuer + "/"), (name, meta[name])
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["response_modes_supported"]) == {"query", "form_post"}
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert "implicit" not in meta["grant_types_supported"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    for prefix in ("token", "introspection", "revocation"):
        algs = meta[f"{prefix}_endpoint_auth_signing_alg_values_supported"]
        assert {"RS256", "ES256"} <= set(algs), prefix
        assert "none" not in algs and not any(a.startswith("HS") for a in algs), prefix
    assert "private_key_jwt" in meta["introspection_endpoint_auth_methods_supported"]
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert meta["subject_types_supported"] == ["public"]
    assert set(meta["scopes_supported"]) >= OIDC_SCOPES
    claims = set(meta["claims_supported"])
    assert {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email"} <= claims
    assert {"email_verified", "phone_number", "address"} <= claims
    assert meta["request_parameter_supported"] is False
    assert meta["request_uri_parameter_supported"] is False


def test_both_discovery_documents_are_the_same(h):
    a, b = (requests.get(h.url(p), timeout=10) for p in WELL_KNOWN)
    assert a.json() == b.json()


@pytest.mark.parametrize("path", [*WELL_KNOWN, "/jwks.json"])
def test_documents_are_cacheable_with_etag(h, path):
    resp = requests.get(h.url(path), timeout=10)
    etag = resp.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert "max-age=" in resp.headers["Cache-Control"]
    again = requests.get(h.url(path), headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    stale = requests.get(h.url(path), headers={"If-None-Match": '"stale"'}, timeout=10)
    assert stale.status_code == 200 and stale.content == resp.content
    head = requests.head(h.url(path), timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) == len(resp.content)
    assert head.headers["ETag"] == etag


@pytest.mark.parametrize("path", [*WELL_KNOWN, "/jwks.json"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_documents_refuse_other_methods(h, path, method):
    resp = requests.request(method, h.url(path), timeout=10)
    assert resp.status_code == 405
    assert "GET" in resp.headers["Allow"]
    assert resp.json()["error"] == "invalid_request"


def test_every_advertised_endpoint_answers(h):
    meta = requests.get(h.url(WELL_KNOWN[0]), timeout=10).json()
    calls = {
        "authorization_endpoint": ("GET", 400),  # no client_id: an error page, no redirect
        "token_endpoint": ("POST", 401),  # no client authentication
        "userinfo_endpoint": ("GET", 401),
        "jwks_uri": ("GET", 200),
        "registration_endpoint": ("POST", 400),
        "introspection_endpoint": ("POST", 401),
        "revocation_endpoint": ("POST", 401),
    }
    assert set(calls) == set(ENDPOINTS)
    for name, (method, status) in calls.items():
        data = {"token": "x"} if method == "POST" and name != "token_endpoint" else None
        resp = requests.request(method, meta[name], data=data, timeout=10)
        assert resp.status_code == status, (name, resp.status_code, resp.text[:200])


# -- JWKS and signing keys ---------------------------------------------------------------


def test_rfc7638_thumbprint_matches_the_rfc_example():
    example = {
        "kty": "RSA",
        "e": "AQAB",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhA"
        "I4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert thumbprint(example) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_jwks_publishes_public_members_with_thumbprint_kid(h, keys_dir):
    resp = requests.get(h.url("/jwks.json"), timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    keys = resp.json()["keys"]
    files = sorted(keys_dir.glob("*.pem"))
    assert len(keys) == len(files) == 1
    jwk = keys[0]
    assert not PRIVATE_MEMBERS & set(jwk), jwk
    assert jwk["use"] == "sig" and jwk["alg"] == "RS256" and jwk["kty"] == "RSA"
    members = pem_members(files[0])
    assert {k: jwk[k] for k in members} == members
    assert jwk["kid"] == thumbprint(members) == thumbprint(jwk)


def test_newest_key_signs_and_every_key_is_published(tmp_path):
    folder = tmp_path / "keys"
    oldest = generate_key_file(folder, "RS256")
    middle = generate_key_file(folder, "ES256")
    newest = generate_key_file(folder, "RS256")
    issuer = "http://127.0.0.1:5999"
    app = build_app(tmp_path, folder, 5999, ISSUER=issuer)
    client = app.test_client()
    jwks = client.get("/jwks.json").get_json()
    published = {k["kid"]: k for k in jwks["keys"]}
    expected = {thumbprint(pem_members(p)): p for p in (oldest, middle, newest)}
    assert set(published) == set(expected)
    for kid, jwk in published.items():
        assert not PRIVATE_MEMBERS & set(jwk)
        assert jwk["alg"] == ("ES256" if expected[kid] == middle else "RS256")
    token, _ = client_credentials(client, Harness(app, issuer))
    assert jwt.get_unverified_header(token)["kid"] == thumbprint(pem_members(newest))
    verify_with_jwks(token, jwks, issuer)
    meta = client.get(WELL_KNOWN[0]).get_json()
    assert meta["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]


def test_es256_signing_key(tmp_path):
    folder = tmp_path / "keys"
    pem = generate_key_file(folder, "ES256")
    issuer = "http://127.0.0.1:5998"
    app = build_app(tmp_path, folder, 5998, ISSUER=issuer)
    client = app.test_client()
    jwks = client.get("/jwks.json").get_json()
    (jwk,) = jwks["keys"]
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["alg"] == "ES256"
    assert not PRIVATE_MEMBERS & set(jwk)
    assert jwk["kid"] == thumbprint(pem_members(pem))
    token, auth = client_credentials(client, Harness(app, issuer))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt"
    claims = verify_with_jwks(token, jwks, issuer)
    assert claims["iss"] == issuer
    meta = client.get(WELL_KNOWN[0]).get_json()
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    # a token signed by another ES256 key with the same kid is refused
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        serialization.load_pem_private_key(
            generate_key_file(tmp_path / "other", "ES256").read_bytes(), None
        ),
        algorithm="ES256",
        headers={"kid": jwk["kid"], "typ": "at+jwt"},
    )
    for candidate, active in ((token, True), (forged, False)):
        resp = client.post("/introspect", data={"token": candidate}, headers=auth)
        assert resp.status_code == 200
        assert resp.get_json()["active"] is active


# -- health ----------------------------------------------------------------------------


def test_health_live(h):
    resp = requests.get(h.url("/health/live"), timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
    assert resp.headers["Cache-Control"] == "no-store"


def test_health_ready_reports_each_dependency(h):
    resp = requests.get(h.url("/health/ready"), timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok"
    expected = {"database": "ok", "signing_key": "ok"}
    if os.environ.get("TEST_REDIS_URL"):
        expected["redis"] = "ok"
    assert body["checks"] == expected
    assert resp.headers["Cache-Control"] == "no-store"


def test_health_ready_fails_when_the_database_is_unreachable(tmp_path, keys_dir):
    app = build_app(
        tmp_path, keys_dir, 5997, DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/x"
    )
    client = app.test_client()
    resp = client.get("/health/ready")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "unavailable"
    assert body["checks"]["signing_key"] == "ok"
    assert client.get("/health/live").status_code == 200  # alive, only not ready
    # requests that need the database answer 503 with Retry-After, never a 500
    token = client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic_auth("c", "s")
    )
    assert token.status_code == 503
    assert token.headers["Retry-After"] == "1"
    assert token.get_json()["error"] == "temporarily_unavailable"
    page = client.get("/login", headers={"Cookie": "tessera_session=" + "x" * 43})
    assert page.status_code in (200, 503)  # the page needs no database
    login = client.post("/login", data={"username": "u", "password": "p"})
    assert login.status_code in (400, 503) and "text/html" in login.headers["Content-Type"]


# -- proxies ---------------------------------------------------------------------------


def _probe_app(tmp_path, keys_dir, hops: int, **overrides):
    app = build_app(tmp_path, keys_dir, 5996, PROXY_HOPS=hops, **overrides)

    def probe():
        return {"scheme": request.scheme, "remote": request.remote_addr, "host": request.host}

    app.add_url_rule("/proxy-probe", "proxy_probe", probe)
    return app


@pytest.mark.parametrize(
    ("hops", "expected"),
    [
        (0, {"scheme": "http", "remote": "192.0.2.50", "host": "localhost"}),
        (1, {"scheme": "https", "remote": "203.0.113.9", "host": "id.example.com"}),
        (2, {"scheme": "https", "remote": "198.51.100.1", "host": "id.example.com"}),
    ],
)
def test_forwarded_headers_are_trusted_for_the_configured_hops(tmp_path, keys_dir, hops, expected):
    app = _probe_app(tmp_path, keys_dir, hops)
    resp = app.test_client().get(
        "/proxy-probe",
        environ_base={"REMOTE_ADDR": "192.0.2.50"},
        headers={
            "X-Forwarded-For": "198.51.100.1, 203.0.113.9",
            "X-Forwarded-Proto": "https, https",
            "X-Forwarded-Host": "id.example.com, id.example.com",
        },
    )
    assert resp.get_json() == expected


def _random_ip(prefix: str) -> str:
    return f"{prefix}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


@pytest.mark.parametrize("hops", [0, 1])
def test_rate_limits_count_the_forwarded_client_address(tmp_path, keys_dir, hops):
    app = build_app(tmp_path, keys_dir, 5995, PROXY_HOPS=hops, RATELIMIT_REGISTER="2 per hour")
    client = app.test_client()
    proxy = _random_ip("10.99")

    def register(forwarded_for: str):
        return client.post(
            "/register",
            json={"redirect_uris": [REDIRECT]},
            environ_base={"REMOTE_ADDR": proxy},
            headers={"X-Forwarded-For": forwarded_for},
        )

    first, second = _random_ip("172.31"), _random_ip("172.30")
    assert register(first).status_code == 201
    assert register(first).status_code == 201
    blocked = register(first)
    assert blocked.status_code == 429
    assert blocked.get_json()["error"] == "temporarily_unavailable"
    assert int(blocked.headers["Retry-After"]) >= 1
    # behind a trusted proxy another user has their own allowance; with no trusted
    # proxy every request comes from the proxy's address and X-Forwarded-For is ignored
    assert register(second).status_code == (201 if hops else 429)


def test_sign_in_behind_an_https_proxy_without_referer(tmp_path, keys_dir):
    """Browsers send no Referer (Referrer-Policy: no-referrer); the form must still work."""
    issuer = "https://id.example.com"
    app = build_app(tmp_path, keys_dir, 443, ISSUER=issuer, PROXY_HOPS=1)
    user = Harness(app, issuer).create_user()
    browser = app.test_client()
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": _random_ip("172.29")}
    page = browser.get("/login", headers=proxied)
    assert page.status_code == 200
    assert "__Host-" in page.headers["Set-Cookie"] and "Secure" in page.headers["Set-Cookie"]
    fields = form_fields(page.get_data(as_text=True))
    fields.update(username=user.username, password=PASSWORD)
    resp = browser.post("/login", data=fields, headers=proxied)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    assert resp.headers["Location"] == "/"


# -- errors ----------------------------------------------------------------------------


def _no_stack_trace(text: str) -> None:
    assert "Traceback" not in text
    assert 'File "' not in text
    assert "werkzeug" not in text.lower()


def test_unknown_path_is_a_json_404_for_api_clients(h):
    resp = requests.get(h.url("/no/such/path"), headers={"Accept": "application/json"})
    assert resp.status_code == 404
    body = resp.json()
    assert body["error"] == "invalid_request" and body["error_description"]
    _no_stack_trace(resp.text)


def test_unknown_path_is_an_html_404_for_browsers(h):
    resp = requests.get(h.url("/no/such/path"), headers={"Accept": "text/html"})
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "<html" in resp.text.lower()
    _no_stack_trace(resp.text)
    assert_security_headers(resp)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/token", "POST"), ("DELETE", "/userinfo", "GET"), ("GET", "/introspect", "POST")],
)
def test_wrong_method_is_a_json_405_with_allow(h, method, path, allowed):
    resp = requests.request(method, h.url(path), timeout=10)
    assert resp.status_code == 405
    assert allowed in resp.headers["Allow"]
    assert resp.json()["error"] == "invalid_request"
    _no_stack_trace(resp.text)


def test_wrong_method_on_a_page_is_an_html_405(h):
    resp = requests.put(h.url("/login"), headers={"Accept": "text/html"}, timeout=10)
    assert resp.status_code == 405
    assert resp.headers["Content-Type"].startswith("text/html")
    _no_stack_trace(resp.text)


def test_error_redirect_targets_survive_the_csp(h):
    """An authorization error goes back to the client by plain redirect, not a blocked form."""
    client_id, _ = h.create_client()
    params = h.authorize_params(client_id, pkce_pair()[1], scope="openid nosuchscope")
    resp = requests.get(h.url("/authorize"), params=params, allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(REDIRECT + "?")
    assert redirect_params(resp)["iss"] == h.issuer
    assert_security_headers(resp)


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}
