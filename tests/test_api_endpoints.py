"""/userinfo (OIDC Core §5.3, RFC 6750), /introspect (RFC 7662), /revoke (RFC 7009),
/register (RFC 7591, RFC 7592) and rate limits, over real HTTP."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import Harness, assert_oauth_error, pkce_pair, serve

ORIGIN = {"Origin": "https://spa.example.com"}
ADDRESS = {"street_address": "1 Main St", "locality": "Springfield", "country": "US"}


def code_tokens(h: Harness, scope: str = "openid profile email", **client_kw):
    """A signed-in user's tokens; returns (client, user, token response)."""
    user = h.create_user(phone_number="+1 555 0100", address=ADDRESS)
    client = h.create_client(**client_kw)
    code, verifier, _ = h.get_code(client[0], user, scope=scope)
    resp = h.exchange(*client, code, verifier)
    assert resp.status_code == 200, resp.text
    return client, user, resp.json()


def client_token(h: Harness) -> tuple[tuple[str, str], str]:
    client = h.create_client()
    resp = requests.post(
        h.url("/token"), data={"grant_type": "client_credentials"}, auth=client, timeout=10
    )
    assert resp.status_code == 200, resp.text
    return client, resp.json()["access_token"]


def mint(h: Harness, sub: str, client_id: str, exp_in: int, key=None, kid=None) -> str:
    """An access token signed like the server's own, with a chosen expiry."""
    signing = h.app.extensions["tessera"].keys.signing_key()
    now = int(time.time())
    claims = {
        "iss": h.issuer,
        "sub": sub,
        "aud": h.issuer,
        "client_id": client_id,
        "scope": "openid profile",
        "iat": now + exp_in - 600,
        "exp": now + exp_in,
        "jti": uuid.uuid4().hex,
    }
    headers = {"typ": "at+jwt", "kid": kid or signing.kid}
    return jwt.encode(claims, key or signing.private_key, algorithm="RS256", headers=headers)


def userinfo(h: Harness, token: str | None = None, **kw) -> requests.Response:
    headers = kw.pop("headers", {})
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return requests.request(
        kw.pop("method", "GET"), h.url("/userinfo"), headers=headers, timeout=10, **kw
    )


def introspect(h: Harness, client, token: str, headers=None, **extra) -> requests.Response:
    data = {"token": token, **extra}
    return requests.post(h.url("/introspect"), data=data, auth=client, headers=headers, timeout=10)


def is_active(h: Harness, client, token: str) -> bool:
    resp = introspect(h, client, token)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.json()["active"]


def revoke(h: Harness, client, token: str, **extra) -> requests.Response:
    data = {"token": token, **extra}
    return requests.post(h.url("/revoke"), data=data, auth=client, timeout=10)


def assert_bearer_error(resp, error: str, status: int) -> None:
    """RFC 6750 §3: the error in WWW-Authenticate (and, here, in a JSON body)."""
    assert_oauth_error(resp, error, status)
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'error="{error}"' in challenge


# --- userinfo -----------------------------------------------------------------------


def test_userinfo_without_a_token_is_a_bare_challenge(h):
    for resp in (userinfo(h), userinfo(h, method="POST")):
        assert resp.status_code == 401
        assert resp.headers["Cache-Control"] == "no-store"
        challenge = resp.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert "error=" not in challenge  # RFC 6750 §3.1: no error code without credentials
        assert resp.json() == {}


@pytest.mark.parametrize(
    "token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "x" * 9000]
)
def test_userinfo_garbage_token(h, token):
    assert_bearer_error(userinfo(h, token), "invalid_token", 401)


def test_userinfo_refuses_other_schemes_and_the_query(h):
    _, _, tokens = code_tokens(h)
    resp = userinfo(h, headers={"Authorization": "Basic " + tokens["access_token"]})
    assert_bearer_error(resp, "invalid_token", 401)
    resp = requests.get(h.url("/userinfo?" + urlencode({"access_token": tokens["access_token"]})))
    assert resp.status_code == 401


def test_userinfo_get_and_post(h):
    _, user, tokens = code_tokens(h)
    assert userinfo(h, tokens["access_token"]).json()["sub"] == user.id
    by_header = userinfo(h, tokens["access_token"], method="POST")
    assert by_header.status_code == 200 and by_header.json()["sub"] == user.id
    by_body = userinfo(h, method="POST", data={"access_token": tokens["access_token"]})
    assert by_body.status_code == 200, by_body.text
    assert by_body.json()["sub"] == user.id
    assert by_body.headers["Cache-Control"] == "no-store"


def test_userinfo_refuses_an_id_token(h):
    _, _, tokens = code_tokens(h)
    assert_bearer_error(userinfo(h, tokens["id_token"]), "invalid_token", 401)


def test_userinfo_refuses_revoked_tokens(h):
    client, _, tokens = code_tokens(h)
    assert userinfo(h, tokens["access_token"]).status_code == 200
    assert revoke(h, client, tokens["access_token"]).status_code == 200
    assert_bearer_error(userinfo(h, tokens["access_token"]), "invalid_token", 401)


def test_userinfo_refuses_expired_and_foreign_tokens(h):
    client, user, _ = code_tokens(h)
    assert userinfo(h, mint(h, user.id, client[0], 300)).status_code == 200  # the control
    assert_bearer_error(userinfo(h, mint(h, user.id, client[0], -60)), "invalid_token", 401)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = mint(h, user.id, client[0], 300, key=stranger)
    assert_bearer_error(userinfo(h, forged), "invalid_token", 401)
    forged = mint(h, user.id, client[0], 300, key=stranger, kid="someone-else")
    assert_bearer_error(userinfo(h, forged), "invalid_token", 401)


def test_userinfo_client_credentials_token_lacks_openid(h):
    _, token = client_token(h)
    assert_bearer_error(userinfo(h, token), "insufficient_scope", 403)


def test_userinfo_token_in_header_and_body_is_invalid_request(h):
    _, _, tokens = code_tokens(h)
    resp = userinfo(h, tokens["access_token"], method="POST", data={"access_token": "x"})
    assert_oauth_error(resp, "invalid_request", 400)
    data = [("access_token", tokens["access_token"])] * 2
    assert_oauth_error(userinfo(h, method="POST", data=data), "invalid_request", 400)


@pytest.mark.parametrize(
    ("scope", "present", "absent"),
    [
        ("openid", set(), {"name", "email", "address", "phone_number"}),
        (
            "openid profile",
            {"name", "given_name", "family_name", "preferred_username", "updated_at"},
            {"email", "address", "phone_number"},
        ),
        ("openid email", {"email", "email_verified"}, {"name", "address", "phone_number"}),
        ("openid address", {"address"}, {"name", "email", "phone_number"}),
        ("openid phone", {"phone_number", "phone_number_verified"}, {"name", "email", "address"}),
    ],
)
def test_userinfo_claims_follow_the_scopes(h, scope, present, absent):
    _, user, tokens = code_tokens(h, scope=scope)
    claims = userinfo(h, tokens["access_token"]).json()
    assert claims["sub"] == user.id
    assert present <= set(claims), claims
    assert not absent & set(claims), claims
    expected = {
        "email": user.email,
        "preferred_username": user.username,
        "address": ADDRESS,
        "phone_number": "+1 555 0100",
    }
    for name in present & set(expected):
        assert claims[name] == expected[name]


# --- introspection ------------------------------------------------------------------


@pytest.fixture(params=["fast", "flask"])
def via(request) -> dict:
    return {} if request.param == "fast" else dict(ORIGIN)


def test_introspect_requires_client_authentication(h):
    _, _, tokens = code_tokens(h)
    resp = requests.post(h.url("/introspect"), data={"token": tokens["access_token"]}, timeout=10)
    assert_oauth_error(resp, "invalid_client", 401)
    client_id, _ = h.create_client()
    resp = introspect(h, (client_id, "wrong"), tokens["access_token"])
    assert_oauth_error(resp, "invalid_client", 401)
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")
    public_id, _ = h.create_client(auth_method="none", grant_types=["authorization_code"])
    resp = requests.post(
        h.url("/introspect"),
        data={"token": tokens["access_token"], "client_id": public_id},
        timeout=10,
    )
    assert_oauth_error(resp, "invalid_client", 401)


def test_introspect_active_access_token(h, via):
    client, user, tokens = code_tokens(h)
    resp = introspect(h, client, tokens["access_token"], headers=via)
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    assert body["active"] is True
    assert body["client_id"] == client[0]
    assert body["sub"] == user.id
    assert body["scope"] == "openid profile email"
    assert body["iss"] == h.issuer
    assert body["exp"] > time.time()
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert body["jti"] == claims["jti"]


def test_introspect_both_paths_agree(h):
    client, _, tokens = code_tokens(h)
    fast = introspect(h, client, tokens["access_token"])
    slow = introspect(h, client, tokens["access_token"], headers=ORIGIN)
    assert fast.json() == slow.json()
    assert fast.headers["Content-Type"] == slow.headers["Content-Type"]


def test_introspect_inactive_tokens(h, via):
    client, user, tokens = code_tokens(h)
    other_client, _, other_tokens = code_tokens(h)
    expired = mint(h, user.id, client[0], -60)
    assert introspect(h, client, mint(h, user.id, client[0], 300)).json()["active"]  # control
    for token in (
        "garbage",
        "a.b.c",
        expired,
        other_tokens["access_token"],  # RFC 7662 §4: not this client's to read
        other_tokens["refresh_token"],
        tokens["id_token"],
    ):
        resp = introspect(h, client, token, headers=via)
        assert resp.status_code == 200
        assert resp.json() == {"active": False}, token
    assert is_active(h, other_client, other_tokens["access_token"])
    assert revoke(h, client, tokens["access_token"]).status_code == 200
    assert introspect(h, client, tokens["access_token"], headers=via).json() == {"active": False}


def test_introspect_refresh_token(h):
    client, user, tokens = code_tokens(h)
    body = introspect(h, client, tokens["refresh_token"]).json()
    assert body["active"] is True
    assert body["client_id"] == client[0]
    assert body["sub"] == user.id
    assert body["scope"] == "openid profile email"
    assert body["token_type"] == "refresh_token"
    rotated = requests.post(
        h.url("/token"),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=client,
        timeout=10,
    ).json()
    assert not is_active(h, client, tokens["refresh_token"])
    assert is_active(h, client, rotated["refresh_token"])


def test_introspect_token_type_hint(h, via):
    client, _, tokens = code_tokens(h)
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    for token, hint in [
        (access, "access_token"),
        (access, "refresh_token"),  # a wrong hint widens the search (RFC 7662 §2.1)
        (refresh, "access_token"),
        (refresh, "refresh_token"),
        (access, "something_else"),
    ]:
        resp = introspect(h, client, token, headers=via, token_type_hint=hint)
        assert resp.json()["active"] is True, (token, hint)
    data = [("token", access), ("token_type_hint", "a"), ("token_type_hint", "b")]
    resp = requests.post(h.url("/introspect"), data=data, auth=client, headers=via, timeout=10)
    assert_oauth_error(resp, "invalid_request")
    resp = requests.post(h.url("/introspect"), data={}, auth=client, headers=via, timeout=10)
    assert_oauth_error(resp, "invalid_request")


# --- revocation ---------------------------------------------------------------------


def test_revoke_requires_client_authentication(h):
    _, _, tokens = code_tokens(h)
    resp = requests.post(h.url("/revoke"), data={"token": tokens["refresh_token"]}, timeout=10)
    assert_oauth_error(resp, "invalid_client", 401)
    client_id, _ = h.create_client()
    resp = revoke(h, (client_id, "wrong"), tokens["refresh_token"])
    assert_oauth_error(resp, "invalid_client", 401)
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")


def test_revoke_unknown_tokens_is_200(h):
    client = h.create_client()
    for token in ("garbage", "a.b.c", secrets.token_urlsafe(32)):
        resp = revoke(h, client, token)
        assert resp.status_code == 200, resp.text
        assert resp.headers["Cache-Control"] == "no-store"


def test_revoke_refresh_token_revokes_its_family(h):
    client, _, tokens = code_tokens(h)
    assert revoke(h, client, tokens["refresh_token"]).status_code == 200
    assert not is_active(h, client, tokens["refresh_token"])
    assert not is_active(h, client, tokens["access_token"])
    assert userinfo(h, tokens["access_token"]).status_code == 401
    resp = requests.post(
        h.url("/token"),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=client,
        timeout=10,
    )
    assert_oauth_error(resp, "invalid_grant")


def test_revoke_access_token_leaves_the_refresh_token(h):
    client, _, tokens = code_tokens(h)
    assert revoke(h, client, tokens["access_token"], token_type_hint="access_token").ok
    assert not is_active(h, client, tokens["access_token"])
    assert is_active(h, client, tokens["refresh_token"])


@pytest.mark.parametrize("hint", ["access_token", "something_else"])
def test_revoke_ignores_a_wrong_or_unknown_hint(h, hint):
    """RFC 7009 §2.1: a server that cannot find the token by the hint searches further."""
    client, _, tokens = code_tokens(h)
    assert revoke(h, client, tokens["refresh_token"], token_type_hint=hint).status_code == 200
    assert not is_active(h, client, tokens["refresh_token"])


def test_revoke_another_clients_token_has_no_effect(h):
    owner, _, tokens = code_tokens(h)
    intruder = h.create_client()
    for token in (tokens["access_token"], tokens["refresh_token"]):
        resp = revoke(h, intruder, token)
        # RFC 7009 §2.1 refuses the request; answering 200 would be allowed too.
        if resp.status_code != 200:
            assert_oauth_error(resp, "invalid_request")
        assert is_active(h, owner, token)
    assert userinfo(h, tokens["access_token"]).status_code == 200


def test_public_client_revokes_its_own_refresh_token(h):
    user = h.create_user()
    client_id, _ = h.create_client(
        auth_method="none", grant_types=["authorization_code", "refresh_token"]
    )
    code, verifier, _ = h.get_code(client_id, user)
    tokens = h.exchange(client_id, None, code, verifier).json()
    resp = requests.post(
        h.url("/revoke"), data={"token": tokens["refresh_token"], "client_id": client_id}
    )
    assert resp.status_code == 200, resp.text
    assert userinfo(h, tokens["access_token"]).status_code == 401


# --- registration -------------------------------------------------------------------


def register(h: Harness, metadata, token: str | None = None, **kw) -> requests.Response:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = "Bearer " + token
    return requests.post(h.url("/register"), json=metadata, headers=headers, timeout=10, **kw)


def manage(h: Harness, method: str, reg: dict, token: str | None = None, **kw):
    headers = {"Authorization": "Bearer " + (token or reg["registration_access_token"])}
    return requests.request(
        method, reg["registration_client_uri"], headers=headers, timeout=10, **kw
    )


WEB = {"client_name": "Web app", "redirect_uris": ["https://app.example.com/cb"]}


def test_register_confidential_and_public_clients(h):
    resp = register(h, {**WEB, "grant_types": ["authorization_code", "client_credentials"]})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    reg = resp.json()
    assert reg["registration_client_uri"] == h.url(f"/register/{reg['client_id']}")
    assert reg["token_endpoint_auth_method"] == "client_secret_basic"
    assert reg["redirect_uris"] == WEB["redirect_uris"]
    token = requests.post(
        h.url("/token"),
        data={"grant_type": "client_credentials"},
        auth=(reg["client_id"], reg["client_secret"]),
        timeout=10,
    )
    assert token.status_code == 200, token.text
    public = register(
        h,
        {
            "redirect_uris": ["http://127.0.0.1:8123/cb", "http://[::1]/cb", "http://localhost/x"],
            "token_endpoint_auth_method": "none",
        },
    )
    assert public.status_code == 201, public.text
    assert "client_secret" not in public.json()
    native = register(
        h, {"application_type": "native", "redirect_uris": ["com.example.app:/oauth2redirect"]}
    )
    assert native.status_code == 201, native.text


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example.com/cb",
        "https://app.example.com/cb#fragment",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "com.example.app:/cb",  # private-use schemes are for native apps only
        "/relative/cb",
        "https:///no-host",
        "",
        "https://app.example.com/a b",
    ],
)
def test_register_invalid_redirect_uri(h, uri):
    assert_oauth_error(register(h, {"redirect_uris": [uri]}), "invalid_redirect_uri")


@pytest.mark.parametrize(
    "metadata",
    [
        {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]},
        {
            "token_endpoint_auth_method": "none",
            "grant_types": ["refresh_token"],
            "response_types": [],
        },
        {
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "client_credentials"],
        },
        {"grant_types": ["password"]},
        {"grant_types": ["implicit"], "response_types": ["token"]},
        {"response_types": ["token"]},
        {"response_types": ["code id_token"]},
        {"grant_types": ["client_credentials"], "response_types": ["code"]},
        {"grant_types": ["authorization_code"], "response_types": []},
        {"token_endpoint_auth_method": "client_secret_jwt"},
        {"token_endpoint_auth_method": "private_key_jwt"},  # without keys
        {"scope": "openid superuser"},
        {"grant_types": "authorization_code"},
        {"client_name": ["not", "a", "string"]},
        {"id_token_signed_response_alg": "none"},
        {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
        {"client_name": "nul\x00byte"},
    ],
)
def test_register_invalid_metadata(h, metadata):
    body = {**WEB, **metadata}
    assert_oauth_error(register(h, body), "invalid_client_metadata")


def test_register_needs_a_json_object(h):
    form = requests.post(h.url("/register"), data={"redirect_uris": WEB["redirect_uris"][0]})
    assert_oauth_error(form, "invalid_client_metadata")
    assert_oauth_error(register(h, [WEB]), "invalid_client_metadata")
    for raw in (b"{not json", b"[" * 100_000):
        resp = register(h, None, data=raw, headers={"Content-Type": "application/json"})
        assert_oauth_error(resp, "invalid_client_metadata")


def test_registration_management(h):
    reg = register(h, WEB).json()
    got = manage(h, "GET", reg)
    assert got.status_code == 200, got.text
    assert got.headers["Cache-Control"] == "no-store"
    assert got.json()["client_id"] == reg["client_id"]
    assert got.json()["redirect_uris"] == WEB["redirect_uris"]
    assert "registration_access_token" not in got.json()

    new_uri = "https://app.example.com/new-cb"
    update = {"client_id": reg["client_id"], "client_name": "Renamed", "redirect_uris": [new_uri]}
    put = manage(h, "PUT", reg, json=update)
    assert put.status_code == 200, put.text
    assert put.json()["client_name"] == "Renamed"
    assert manage(h, "GET", reg).json()["redirect_uris"] == [new_uri]
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": reg["client_id"],
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    old = requests.get(
        h.url("/authorize"), params={**params, "redirect_uri": WEB["redirect_uris"][0]}
    )
    assert old.status_code == 400 and "text/html" in old.headers["Content-Type"]
    new = requests.get(
        h.url("/authorize"), params={**params, "redirect_uri": new_uri}, allow_redirects=False
    )
    assert new.status_code == 302 and new.headers["Location"].startswith("/login")

    assert manage(h, "DELETE", reg).status_code == 204
    gone = manage(h, "GET", reg)
    assert_oauth_error(gone, "invalid_token", 401)
    resp = requests.post(
        h.url("/token"),
        data={"grant_type": "client_credentials"},
        auth=(reg["client_id"], reg["client_secret"]),
        timeout=10,
    )
    assert_oauth_error(resp, "invalid_client", 401)


def test_registration_management_refuses_wrong_tokens(h):
    reg = register(h, WEB).json()
    other = register(h, WEB).json()
    for token in ("wrong", other["registration_access_token"], reg["client_secret"]):
        for method in ("GET", "PUT", "DELETE"):
            resp = manage(h, method, reg, token=token, json={**WEB, "client_id": reg["client_id"]})
            assert_oauth_error(resp, "invalid_token", 401)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer ")
    resp = requests.get(reg["registration_client_uri"], timeout=10)
    assert resp.status_code == 401
    assert manage(h, "GET", reg).status_code == 200  # nothing was changed or deleted


def test_registration_update_rules(h):
    reg = register(h, WEB).json()
    mismatched = manage(h, "PUT", reg, json={**WEB, "client_id": secrets.token_urlsafe(16)})
    assert_oauth_error(mismatched, "invalid_request")
    with_token = {**WEB, "client_id": reg["client_id"], "registration_access_token": "x"}
    assert_oauth_error(manage(h, "PUT", reg, json=with_token), "invalid_request")
    to_public = {**WEB, "client_id": reg["client_id"], "token_endpoint_auth_method": "none"}
    assert_oauth_error(manage(h, "PUT", reg, json=to_public), "invalid_client_metadata")
    bad_uri = {"client_id": reg["client_id"], "redirect_uris": ["javascript:alert(1)"]}
    assert_oauth_error(manage(h, "PUT", reg, json=bad_uri), "invalid_redirect_uri")
    assert manage(h, "GET", reg).json()["redirect_uris"] == WEB["redirect_uris"]


@pytest.fixture(scope="module")
def token_policy(tmp_path_factory, keys_dir) -> Iterator[Harness]:
    with serve(
        tmp_path_factory.mktemp("token-policy"),
        keys_dir,
        REGISTRATION_POLICY="token",
        RATELIMIT_REGISTER="3 per minute",
        RATELIMIT_TOKEN="3 per hour",
        PROXY_HOPS=1,
    ) as harness:
        yield harness


def initial_access_token(h: Harness, uses: int) -> str:
    result = h.app.test_cli_runner().invoke(args=["clients", "initial-token", "--uses", str(uses)])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def from_ip() -> dict:
    """A distinct client address per test (the app trusts one proxy hop)."""
    return {"X-Forwarded-For": f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.7"}


def test_token_policy_requires_an_initial_access_token(token_policy):
    h = token_policy
    ip = from_ip()
    assert_oauth_error(register(h, WEB, headers=dict(ip)), "invalid_token", 401)
    assert_oauth_error(register(h, WEB, "made-up", headers=dict(ip)), "invalid_token", 401)
    once = initial_access_token(h, 1)
    resp = register(h, WEB, once, headers=from_ip())
    assert resp.status_code == 201, resp.text
    assert_oauth_error(register(h, WEB, once, headers=from_ip()), "invalid_token", 401)


def test_register_rate_limit(token_policy):
    h = token_policy
    token = initial_access_token(h, 0)
    ip = from_ip()
    for _ in range(3):
        assert register(h, WEB, token, headers=dict(ip)).status_code == 201
    limited = register(h, WEB, token, headers=dict(ip))
    assert_oauth_error(limited, "temporarily_unavailable", 429)
    assert int(limited.headers["Retry-After"]) > 0
    assert register(h, WEB, token, headers=from_ip()).status_code == 201  # per address


def test_token_rate_limit_per_client(token_policy):
    h = token_policy
    client = h.create_client()
    statuses = []
    for _ in range(5):
        resp = requests.post(
            h.url("/token"), data={"grant_type": "client_credentials"}, auth=client, timeout=10
        )
        statuses.append(resp.status_code)
    assert statuses == [200, 200, 200, 429, 429], statuses
    assert_oauth_error(resp, "temporarily_unavailable", 429)
    assert int(resp.headers["Retry-After"]) > 0
    other = h.create_client()
    resp = requests.post(
        h.url("/token"), data={"grant_type": "client_credentials"}, auth=other, timeout=10
    )
    assert resp.status_code == 200


def test_closed_policy(tmp_path_factory, keys_dir):
    with serve(tmp_path_factory.mktemp("closed"), keys_dir, REGISTRATION_POLICY="closed") as h:
        resp = register(h, WEB)
        assert resp.status_code == 403
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.json()["error"] == "access_denied"


GRANTS = ["authorization_code", "client_credentials"]


def test_switching_to_private_key_jwt_and_back_manages_the_secret(h):
    """A secret exists only for the client_secret_* methods and is shown once when issued."""
    reg = register(h, {**WEB, "grant_types": GRANTS}).json()
    old_secret = reg["client_secret"]
    key = {"kty": "RSA", "n": "sXch" * 64, "e": "AQAB", "kid": "k1", "use": "sig"}
    update = {
        **WEB,
        "client_id": reg["client_id"],
        "grant_types": GRANTS,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key]},
    }
    put = manage(h, "PUT", reg, json=update)
    assert put.status_code == 200, put.text
    assert "client_secret" not in put.json()
    old = requests.post(
        h.url("/token"),
        data={"grant_type": "client_credentials"},
        auth=(reg["client_id"], old_secret),
        timeout=10,
    )
    assert_oauth_error(old, "invalid_client", 401)

    back = {**update, "token_endpoint_auth_method": "client_secret_basic"}
    del back["jwks"]
    put = manage(h, "PUT", reg, json=back)
    assert put.status_code == 200, put.text
    new_secret = put.json()["client_secret"]
    assert new_secret != old_secret
    resp = requests.post(
        h.url("/token"),
        data={"grant_type": "client_credentials"},
        auth=(reg["client_id"], new_secret),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
