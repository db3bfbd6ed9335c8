"""End to end over HTTP with Authlib, a strict third-party OAuth 2 / OpenID Connect client.

Discovery → dynamic registration → authorization with PKCE, nonce and state → the login
and consent pages → token → ID token checked against the JWKS → userinfo → refresh →
introspection → revocation; client_credentials, private_key_jwt, form_post and a public
client. Each step checks what a relying party depends on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt as pyjwt
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oidc.core import CodeIDToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt as jose_jwt
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from tests.helpers import (
    PASSWORD,
    REDIRECT,
    Harness,
    assert_oauth_error,
    build_app,
    form_fields,
    free_port,
    serve,
)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- helpers ---------------------------------------------------------------------------


def discover(h: Harness) -> dict:
    resp = requests.get(h.url("/.well-known/openid-configuration"), timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


def register(meta: dict, **fields) -> dict:
    """RFC 7591 registration under the open policy; returns the 201 body."""
    body = {"client_name": "Authlib e2e", "redirect_uris": [REDIRECT], **fields}
    resp = requests.post(meta["registration_endpoint"], json=body, timeout=10)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.json()


def register_service(meta: dict, **fields) -> dict:
    """A client for client_credentials only: no redirect URIs, no response types."""
    return register(
        meta, redirect_uris=[], grant_types=["client_credentials"], response_types=[], **fields
    )


def drive(h: Harness, user, url: str):
    """Follow an authorization URL like a browser: login page, consent page, back out.

    Both forms must carry a CSRF token in a hidden input. Returns the first response that
    leaves the provider (a redirect to the client, or the form_post page) and the pages seen.
    """
    browser = requests.Session()
    pages: list[str] = []
    resp = browser.get(url, allow_redirects=False, timeout=10)
    for _ in range(8):
        path = urlsplit(resp.url).path
        shown = resp.request.method == "GET" and resp.status_code == 200
        if shown and path in ("/login", "/consent"):
            pages.append(path)
            fields = form_fields(resp.text)
            assert fields.get("csrf_token"), f"{path} form has no CSRF token"
            if path == "/login":
                fields.update(username=user.username, password=PASSWORD)
            else:
                fields["decision"] = "allow"
            resp = browser.post(h.url(path), data=fields, allow_redirects=False, timeout=10)
        elif resp.status_code in (302, 303):
            location = urljoin(resp.url, resp.headers["Location"])
            if not location.startswith(h.base_url + "/"):
                return resp, pages
            resp = browser.get(location, allow_redirects=False, timeout=10)
        else:
            return resp, pages
    raise AssertionError("the sign-in did not finish")


def relying_party(meta: dict, client_id: str, secret=None, **kw) -> OAuth2Session:
    """Authlib's client as a relying party: PKCE S256, the registered redirect URI."""
    kw.setdefault("scope", "openid profile email")
    return OAuth2Session(
        client_id,
        secret,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint=meta["token_endpoint"],
        **kw,
    )


@dataclass
class Authorization:
    resp: requests.Response
    pages: list[str]
    verifier: str
    nonce: str
    state: str


def authorize(h: Harness, meta: dict, client: OAuth2Session, user, **extra) -> Authorization:
    """An authorization URL from Authlib (PKCE S256, nonce, state), driven through sign-in."""
    verifier, nonce = generate_token(64), generate_token(24)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
    )
    resp, pages = drive(h, user, url)
    return Authorization(resp, pages, verifier, nonce, state)


def token_request(meta: dict, data: dict, auth=None) -> requests.Response:
    return requests.post(meta["token_endpoint"], data=data, auth=auth, timeout=10)


def introspect(client: OAuth2Session, meta: dict, token: str, **kw) -> dict:
    resp = client.introspect_token(meta["introspection_endpoint"], token=token, **kw)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.json()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def half_hash(value: str, alg: str) -> str:
    """OIDC Core §3.1.3.6: left half of the hash named by the JWS alg, base64url."""
    digest = hashlib.new("sha" + alg[-3:], value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def key_set(meta: dict) -> KeySet:
    resp = requests.get(meta["jwks_uri"], timeout=10)
    assert resp.status_code == 200
    jwks = resp.json()
    for key in jwks["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "private members published"
        assert key["kid"]
    return KeySet.import_key_set(jwks)


def validate_id_token(meta: dict, token: dict, client_id: str, nonce: str) -> CodeIDToken:
    """Signature against the JWKS, then iss, aud, nonce, exp, iat and at_hash, strictly."""
    decoded = jose_jwt.decode(
        token["id_token"], key_set(meta), algorithms=meta["id_token_signing_alg_values_supported"]
    )
    assert decoded.header["alg"] in meta["id_token_signing_alg_values_supported"]
    assert decoded.header["kid"]
    options = {k: {"essential": True} for k in ("sub", "exp", "iat", "at_hash", "auth_time")}
    options.update(
        iss={"essential": True, "value": meta["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
    )
    params = {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]}
    claims = CodeIDToken(decoded.claims, decoded.header, options, params)
    claims.validate(leeway=5)
    assert claims["aud"] == client_id or claims["aud"] == [client_id]
    assert claims["at_hash"] == half_hash(token["access_token"], decoded.header["alg"])
    assert claims["iat"] <= time.time() + 5 < claims["exp"]
    return claims


def verify_access_token(meta: dict, token: str) -> dict:
    """RFC 9068 §4: typ at+jwt, signature against the JWKS, iss, aud, exp, iat, jti."""
    decoded = jose_jwt.decode(token, key_set(meta), algorithms=["RS256", "ES256"])
    assert decoded.header["typ"].lower() in ("at+jwt", "application/at+jwt")
    options = {k: {"essential": True} for k in ("sub", "client_id", "jti", "iat", "exp")}
    issuer = {"essential": True, "value": meta["issuer"]}
    JWTClaimsRegistry(leeway=5, iss=issuer, aud=issuer, **options).validate(decoded.claims)
    return decoded.claims


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def rsa_client_key() -> tuple[bytes, dict]:
    """A client's RSA key pair: PEM private key, and the public JWK with a kid."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=uuid.uuid4().hex, use="sig", alg="RS256")
    return pem, jwk


def assertion(pem: bytes, kid: str, client_id: str, audience: str, jti: str | None = None) -> str:
    now, jti = int(time.time()), jti or secrets.token_urlsafe(16)
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 120}
    return pyjwt.encode({**claims, "jti": jti}, pem, algorithm="RS256", headers={"kid": kid})


def assertion_grant(pem: bytes, kid: str, client_id: str, audience: str, jti=None) -> dict:
    """A client_credentials request authenticated by private_key_jwt (RFC 7523 §2.2)."""
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion(pem, kid, client_id, audience, jti),
    }


@pytest.fixture(scope="module")
def strict(tmp_path_factory, keys_dir):
    """A second live server: strict refresh reuse detection, and API scopes."""
    with serve(
        tmp_path_factory.mktemp("strict"),
        keys_dir,
        REFRESH_REUSE_GRACE=0,
        API_SCOPES=["api.read", "api.write"],
    ) as harness:
        yield harness


# --- the authorization code flow --------------------------------------------------------


def test_code_flow_with_authlib(h):
    meta = discover(h)  # the relying party learns every endpoint from discovery
    assert meta["issuer"] == h.issuer
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    reg = register(
        meta,
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="client_secret_basic",
        scope="openid profile email",
    )
    client_id, secret = reg["client_id"], reg["client_secret"]
    assert reg["client_secret_expires_at"] == 0 or reg["client_secret_expires_at"] > time.time()
    assert reg["registration_access_token"] and reg["registration_client_uri"]
    assert reg["redirect_uris"] == [REDIRECT]

    user = h.create_user()
    client = relying_party(meta, client_id, secret)
    authz = authorize(h, meta, client, user)
    assert authz.pages == ["/login", "/consent"]
    assert authz.resp.status_code == 302
    location = authz.resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == authz.state
    assert query["iss"] == meta["issuer"]  # RFC 9207
    assert query["code"]

    token = client.fetch_token(authorization_response=location, code_verifier=authz.verifier)
    nonce = authz.nonce  # the ID token must carry it back
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] > 0
    assert set(token["scope"].split()) == {"openid", "profile", "email"}
    claims = validate_id_token(meta, token, client_id, nonce)
    assert claims["sub"] == user.id
    at = verify_access_token(meta, token["access_token"])
    assert at["sub"] == user.id and at["client_id"] == client_id

    # an ID token for another nonce, or beside another access token, must not validate
    with pytest.raises(InvalidClaimError):
        validate_id_token(meta, token, client_id, "another-nonce")
    with pytest.raises(InvalidClaimError):
        validate_id_token(
            meta, {**token, "access_token": token["access_token"] + "x"}, client_id, nonce
        )

    # userinfo: GET and POST with the header (Authlib), POST with the form body (RFC 6750 §2.2)
    for method in ("GET", "POST"):
        info = client.request(method, meta["userinfo_endpoint"])
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == user.id
        assert info.json()["email"] == user.email
        assert info.json()["name"] == "Test User"
    info = requests.post(
        meta["userinfo_endpoint"], data={"access_token": token["access_token"]}, timeout=10
    )
    assert info.status_code == 200 and info.json()["sub"] == user.id

    # refresh: rotation gives a new refresh token and a new access token
    first = dict(token)
    refreshed = client.refresh_token(refresh_token=first["refresh_token"])
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert refreshed["access_token"] != first["access_token"]
    at2 = verify_access_token(meta, refreshed["access_token"])
    assert at2["sub"] == user.id and at2["jti"] != at["jti"]
    # within the grace window a retry of the rotated token gets the very same successor
    retry = token_request(
        meta,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        (client_id, secret),
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == refreshed["refresh_token"]

    # introspection (RFC 7662) of the new access token and refresh token
    info = introspect(client, meta, refreshed["access_token"])
    assert info["active"] is True
    assert info["client_id"] == client_id
    assert info["sub"] == user.id
    assert set(info["scope"].split()) == {"openid", "profile", "email"}
    assert info["token_type"] == "Bearer"
    assert info["iss"] == meta["issuer"]
    assert info["iat"] <= time.time() + 5 < info["exp"]
    assert info["jti"] == at2["jti"]
    info = introspect(client, meta, refreshed["refresh_token"], token_type_hint="refresh_token")
    assert info["active"] is True
    assert info["client_id"] == client_id and info["sub"] == user.id
    assert introspect(client, meta, first["refresh_token"]) == {"active": False}

    # revocation (RFC 7009) of the access token: 200, then inactive everywhere
    resp = client.revoke_token(
        meta["revocation_endpoint"], token=refreshed["access_token"], token_type_hint="access_token"
    )
    assert resp.status_code == 200, resp.text
    assert introspect(client, meta, refreshed["access_token"]) == {"active": False}
    denied = requests.get(meta["userinfo_endpoint"], headers=bearer(refreshed["access_token"]))
    assert denied.status_code == 401
    assert 'error="invalid_token"' in denied.headers["WWW-Authenticate"]
    # revoking an unknown token is not an error (RFC 7009 §2.2)
    resp = client.revoke_token(meta["revocation_endpoint"], token="no-such-token")
    assert resp.status_code == 200

    # revoking the refresh token ends the grant
    resp = client.revoke_token(
        meta["revocation_endpoint"],
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert resp.status_code == 200
    assert introspect(client, meta, refreshed["refresh_token"]) == {"active": False}
    with pytest.raises(OAuthError) as exc:
        client.refresh_token(refresh_token=refreshed["refresh_token"])
    assert exc.value.error == "invalid_grant"


def test_refresh_reuse_revokes_the_family(strict):
    """RFC 9700 §4.14.2 with no grace window: the rotated-out token is refused and
    every token of its grant, the newest access token included, stops working."""
    meta = discover(strict)
    reg = register(meta, grant_types=["authorization_code", "refresh_token"], scope="openid email")
    client_id, secret = reg["client_id"], reg["client_secret"]
    user = strict.create_user()
    client = relying_party(meta, client_id, secret, scope="openid email")
    authz = authorize(strict, meta, client, user)
    location = authz.resp.headers["Location"]
    first = dict(client.fetch_token(authorization_response=location, code_verifier=authz.verifier))
    second = dict(client.refresh_token(refresh_token=first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"]
    assert introspect(client, meta, second["access_token"])["active"] is True

    reuse = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert_oauth_error(token_request(meta, reuse, (client_id, secret)), "invalid_grant")
    for access in (first["access_token"], second["access_token"]):
        assert introspect(client, meta, access) == {"active": False}
        denied = requests.get(meta["userinfo_endpoint"], headers=bearer(access), timeout=10)
        assert denied.status_code == 401
    assert introspect(client, meta, second["refresh_token"]) == {"active": False}
    with pytest.raises(OAuthError) as exc:
        client.refresh_token(refresh_token=second["refresh_token"])
    assert exc.value.error == "invalid_grant"


# --- client_credentials -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials_gives_an_rfc9068_token(strict, method):
    meta = discover(strict)
    endpoint = {"token_endpoint": meta["token_endpoint"]}
    reg = register_service(meta, token_endpoint_auth_method=method, scope="api.read api.write")
    client_id = reg["client_id"]
    client = OAuth2Session(
        client_id, reg["client_secret"], token_endpoint_auth_method=method, **endpoint
    )
    token = client.fetch_token(grant_type="client_credentials", scope="api.read")
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "api.read"
    assert "refresh_token" not in token and "id_token" not in token
    claims = verify_access_token(meta, token["access_token"])
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["scope"] == "api.read"
    assert claims["exp"] - claims["iat"] == token["expires_in"]
    # without a scope parameter the client gets every scope it registered
    token = client.fetch_token(grant_type="client_credentials")
    scope = verify_access_token(meta, token["access_token"])["scope"]
    assert sorted(scope.split()) == ["api.read", "api.write"]
    info = introspect(client, meta, token["access_token"])
    assert info["active"] is True and info["sub"] == client_id
    # an identity scope is not for client_credentials; the other method is refused
    with pytest.raises(OAuthError) as exc:
        client.fetch_token(grant_type="client_credentials", scope="openid")
    assert exc.value.error == "invalid_scope"
    other = "client_secret_post" if method == "client_secret_basic" else "client_secret_basic"
    wrong = OAuth2Session(client_id, reg["client_secret"], token_endpoint_auth_method=other)
    with pytest.raises(OAuthError) as exc:
        wrong.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    assert exc.value.error == "invalid_client"


# --- private_key_jwt (RFC 7523) ---------------------------------------------------------


def test_private_key_jwt_with_registered_jwks(h):
    meta = discover(h)
    pem, jwk = rsa_client_key()
    reg = register_service(meta, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [jwk]})
    client_id = reg["client_id"]
    assert reg["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in reg  # it could never be used

    # Authlib's own assertion with its defaults (aud = the token endpoint, an hour's life),
    # twice: each request carries a new jti.
    client = OAuth2Session(
        client_id, RSAKey.import_key(pem), token_endpoint_auth_method="private_key_jwt"
    )
    client.register_client_auth_method(
        PrivateKeyJWT(meta["token_endpoint"], headers={"kid": jwk["kid"]})
    )
    for _ in range(2):
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        claims = verify_access_token(meta, token["access_token"])
        assert claims["sub"] == client_id and claims["client_id"] == client_id

    # an assertion meant to live longer than an hour is refused (its jti could not be
    # remembered for long enough to stop a replay)
    now = int(time.time())
    long_lived = pyjwt.encode(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": meta["issuer"],
            "iat": now,
            "exp": now + 7200,
            "jti": secrets.token_urlsafe(16),
        },
        pem,
        algorithm="RS256",
        headers={"kid": jwk["kid"]},
    )
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": long_lived,
    }
    assert_oauth_error(token_request(meta, data), "invalid_client", 401)

    # a hand-made assertion with aud = the issuer works once; its jti replayed is refused
    jti = secrets.token_urlsafe(16)
    data = assertion_grant(pem, jwk["kid"], client_id, meta["issuer"], jti)
    first = token_request(meta, data)
    assert first.status_code == 200, first.text
    assert_oauth_error(token_request(meta, data), "invalid_client", 401)
    # a fresh assertion with the same jti is a replay as well
    data = assertion_grant(pem, jwk["kid"], client_id, meta["issuer"], jti)
    assert_oauth_error(token_request(meta, data), "invalid_client", 401)

    # signed by another key, or for another audience: refused
    other_pem, _ = rsa_client_key()
    for bad in (
        assertion(other_pem, jwk["kid"], client_id, meta["issuer"]),
        assertion(pem, jwk["kid"], client_id, "https://elsewhere.example.com"),
    ):
        data["client_assertion"] = bad
        assert_oauth_error(token_request(meta, data), "invalid_client", 401)


def serve_jwks(jwks: dict) -> tuple[ThreadingHTTPServer, str, list[str]]:
    """The client's own HTTP server publishing its JWK Set; records each fetch."""
    body, hits = json.dumps(jwks).encode(), []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/jwks.json", hits


def test_private_key_jwt_with_jwks_uri_fetches_once_and_caches(h):
    """Outside production a loopback http jwks_uri is accepted (as http redirect URIs are)."""
    meta = discover(h)
    pem, jwk = rsa_client_key()
    server, jwks_uri, hits = serve_jwks({"keys": [jwk]})
    try:
        reg = register_service(
            meta, token_endpoint_auth_method="private_key_jwt", jwks_uri=jwks_uri
        )
        client_id = reg["client_id"]
        assert reg["jwks_uri"] == jwks_uri
        for _ in range(2):
            data = assertion_grant(pem, jwk["kid"], client_id, meta["token_endpoint"])
            resp = token_request(meta, data)
            assert resp.status_code == 200, resp.text
            assert verify_access_token(meta, resp.json()["access_token"])["sub"] == client_id
        assert hits == ["/jwks.json"]  # fetched once, then served from the cache
    finally:
        server.shutdown()
        server.server_close()


def test_production_refuses_http_jwks_uri(tmp_path, keys_dir):
    """In production a jwks_uri must be https: refused at registration, never fetched."""
    from app.models import Client
    from app.oauth.client_auth import ClientJwks
    from app.oauth.errors import InvalidClient

    app = build_app(
        tmp_path,
        keys_dir,
        free_port(),
        PRODUCTION=True,
        SECRET_KEY=secrets.token_hex(32),
        ISSUER="https://id.example.test",
        REGISTRATION_POLICY="open",
    )
    body = {
        "redirect_uris": [],
        "response_types": [],
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
    }
    web = app.test_client()
    resp = web.post("/register", json={**body, "jwks_uri": "http://127.0.0.1:9/jwks.json"})
    assert_oauth_error(resp, "invalid_client_metadata")
    resp = web.post("/register", json={**body, "jwks_uri": "https://client.example.test/jwks"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    # and the fetch itself refuses a non-https URI, before any network access
    fetch = ClientJwks(timeout=1, allow_http=False)
    with pytest.raises(InvalidClient):
        fetch(Client(id="c", jwks_uri="http://127.0.0.1:9/jwks.json"))


# --- response_mode=form_post ------------------------------------------------------------


def test_form_post_response(h):
    meta = discover(h)
    client_id, secret = h.create_client()
    user = h.create_user()
    client = relying_party(meta, client_id, secret, scope="openid email")
    authz = authorize(h, meta, client, user, response_mode="form_post")
    resp = authz.resp
    assert authz.pages == ["/login", "/consent"]
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.headers["Cache-Control"] == "no-store"
    form = re.search(r'<form method="post" action="([^"]+)"', resp.text)
    assert form and unescape(form.group(1)) == REDIRECT
    fields = form_fields(resp.text)
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == authz.state and fields["iss"] == meta["issuer"]
    # the auto-submitting script runs by its nonce; nothing inline runs otherwise
    nonce_attr = re.search(r'<script nonce="([^"]+)">', resp.text)
    assert nonce_attr
    csp = resp.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]+)", csp).group(1).split()
    assert f"'nonce-{nonce_attr.group(1)}'" in script_src
    assert "'unsafe-inline'" not in csp
    assert "form-action" not in csp  # would stop the post back to the client
    assert "frame-ancestors 'none'" in csp

    token = client.fetch_token(code=fields["code"], code_verifier=authz.verifier)
    assert validate_id_token(meta, token, client_id, authz.nonce)["sub"] == user.id


# --- a public client --------------------------------------------------------------------


def test_public_client_with_pkce(h):
    meta = discover(h)
    reg = register(
        meta,
        application_type="native",
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",
        scope="openid profile",
    )
    client_id = reg["client_id"]
    assert "client_secret" not in reg
    user = h.create_user()
    client = relying_party(
        meta, client_id, scope="openid profile", token_endpoint_auth_method="none"
    )

    # PKCE is required for a public client
    url, state = client.create_authorization_url(meta["authorization_endpoint"])
    resp = requests.get(url, allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    query = query_of(resp.headers["Location"])
    assert query["error"] == "invalid_request"
    assert query["state"] == state and query["iss"] == meta["issuer"]

    authz = authorize(h, meta, client, user)
    verifier = authz.verifier
    query = query_of(authz.resp.headers["Location"])
    assert query["state"] == authz.state and query["iss"] == meta["issuer"]
    exchange = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": REDIRECT,
        "client_id": client_id,
    }
    # RFC 7636 §4.6: no verifier, or the wrong one, is invalid_grant; the code survives
    assert_oauth_error(token_request(meta, exchange), "invalid_grant")
    wrong = {**exchange, "code_verifier": generate_token(64)}
    assert_oauth_error(token_request(meta, wrong), "invalid_grant")
    token = client.fetch_token(code=query["code"], code_verifier=verifier)
    assert validate_id_token(meta, token, client_id, authz.nonce)["sub"] == user.id
    assert "refresh_token" in token
    # a public client authenticates with its client_id alone, and cannot send a secret
    refreshed = client.refresh_token(refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]}
    resp = token_request(meta, {**data, "client_id": client_id, "client_secret": "guess"})
    assert_oauth_error(resp, "invalid_client", 401)
    # it may revoke its own tokens (RFC 7009 §2.1)
    assert client.get(meta["userinfo_endpoint"]).status_code == 200
    resp = client.revoke_token(meta["revocation_endpoint"], token=refreshed["access_token"])
    assert resp.status_code == 200
    assert client.get(meta["userinfo_endpoint"]).status_code == 401
    # the code is single use: redeemed again, it is refused and its grant revoked
    again = {**exchange, "code_verifier": verifier}
    assert_oauth_error(token_request(meta, again), "invalid_grant")
    with pytest.raises(OAuthError) as exc:
        client.refresh_token(refresh_token=refreshed["refresh_token"])
    assert exc.value.error == "invalid_grant"
