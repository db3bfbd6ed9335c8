"""POST /token: every RFC 6749 §5.2 error, code and refresh token rules, over real HTTP.

client_credentials requests are answered by a WSGI fast path before Flask, so those
cases run both ways (a request with an Origin header always goes through Flask) and
must give the same answer.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Iterator
from urllib.parse import quote_plus

import jwt
import pytest
import requests
from sqlalchemy import update

from app.models import AuthorizationCode, Client, Token, User
from app.security import digest
from tests.helpers import (
    REDIRECT,
    Harness,
    assert_oauth_error,
    pkce_pair,
    redirect_params,
    serve,
)

ORIGIN = {"Origin": "https://spa.example.com"}


def post_token(h: Harness, data, auth=None, headers=None) -> requests.Response:
    return requests.post(h.url("/token"), data=data, auth=auth, headers=headers, timeout=10)


def introspect(h: Harness, client: tuple[str, str], token: str) -> dict:
    resp = requests.post(h.url("/introspect"), data={"token": token}, auth=client, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def is_active(h: Harness, client: tuple[str, str], token: str) -> bool:
    return introspect(h, client, token)["active"]


def userinfo_status(h: Harness, access_token: str) -> int:
    headers = {"Authorization": "Bearer " + access_token}
    return requests.get(h.url("/userinfo"), headers=headers, timeout=10).status_code


def signed_in(h: Harness, **client_kw) -> tuple[tuple[str, str], User, str, str]:
    """A new user and confidential client, and one code; returns (client, user, code, verifier)."""
    user = h.create_user()
    client_id, secret = h.create_client(**client_kw)
    code, verifier, _ = h.get_code(client_id, user)
    return (client_id, secret), user, code, verifier


def code_tokens(h: Harness, **client_kw) -> tuple[tuple[str, str], dict]:
    client, _, code, verifier = signed_in(h, **client_kw)
    resp = h.exchange(*client, code, verifier)
    assert resp.status_code == 200, resp.text
    return client, resp.json()


def refresh(h: Harness, client: tuple[str, str], token: str, **extra) -> requests.Response:
    return post_token(h, {"grant_type": "refresh_token", "refresh_token": token, **extra}, client)


def age_rotation(h: Harness, refresh_token: str, seconds: int) -> None:
    """Move a rotated refresh token's rotation time into the past."""
    from app.db import get_db

    with h.app.app_context():
        db = get_db()
        db.execute(
            update(Token)
            .where(Token.digest == digest(refresh_token))
            .values(rotated_at=Token.rotated_at - seconds)
        )
        db.commit()


# --- request shape ---------------------------------------------------------------------


@pytest.fixture(params=["fast", "flask"])
def via(request) -> dict:
    return {} if request.param == "fast" else dict(ORIGIN)


def test_client_credentials_both_paths_agree(h, via):
    client = h.create_client()
    resp = post_token(h, {"grant_type": "client_credentials"}, client, via)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= h.app.config["ACCESS_TOKEN_TTL"]
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == claims["sub"] == client[0]
    assert claims["aud"] == claims["iss"] == h.issuer


def test_form_content_type_with_charset_is_accepted(h):
    client = h.create_client()
    resp = requests.post(
        h.url("/token"),
        data=b"grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
        auth=client,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text


def test_missing_grant_type_is_invalid_request(h, via):
    client = h.create_client()
    assert_oauth_error(post_token(h, {"scope": "openid"}, client, via), "invalid_request")


@pytest.mark.parametrize("grant", ["password", "implicit", "urn:ietf:params:oauth:grant-type:x"])
def test_unsupported_grant_type(h, via, grant):
    client = h.create_client()
    assert_oauth_error(post_token(h, {"grant_type": grant}, client, via), "unsupported_grant_type")


def test_get_is_refused(h):
    resp = requests.get(h.url("/token?grant_type=client_credentials"), timeout=10)
    assert_oauth_error(resp, "invalid_request", 405)
    assert "POST" in resp.headers["Allow"]


def test_query_string_parameters_are_ignored(h):
    client = h.create_client()
    resp = requests.post(
        h.url("/token?grant_type=client_credentials"), data={"x": "1"}, auth=client, timeout=10
    )
    assert_oauth_error(resp, "invalid_request")


@pytest.mark.parametrize("kind", ["json", "multipart", "text"])
def test_wrong_content_type_is_invalid_request(h, kind):
    client = h.create_client()
    if kind == "json":
        kw = {"json": {"grant_type": "client_credentials"}}
    elif kind == "multipart":
        kw = {"files": {"grant_type": (None, "client_credentials")}}
    else:
        kw = {"data": b"grant_type=client_credentials", "headers": {"Content-Type": "text/plain"}}
    resp = requests.post(h.url("/token"), auth=client, timeout=10, **kw)
    assert_oauth_error(resp, "invalid_request")


@pytest.mark.parametrize("name", ["grant_type", "scope", "client_id"])
def test_repeated_parameter_is_invalid_request(h, via, name):
    client = h.create_client()
    value = {"grant_type": "client_credentials", "scope": "", "client_id": client[0]}[name]
    data = [("grant_type", "client_credentials"), (name, value), (name, value)]
    assert_oauth_error(post_token(h, data, client, via), "invalid_request")


# --- client authentication ---------------------------------------------------------------


def test_wrong_basic_secret_is_401_with_basic_challenge(h, via):
    client_id, _ = h.create_client()
    resp = post_token(h, {"grant_type": "client_credentials"}, (client_id, "wrong"), via)
    assert_oauth_error(resp, "invalid_client", 401)
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")


def test_unknown_client_is_invalid_client(h, via):
    resp = post_token(h, {"grant_type": "client_credentials"}, ("nobody", "secret"), via)
    assert_oauth_error(resp, "invalid_client", 401)
    assert resp.headers["WWW-Authenticate"].startswith("Basic ")
    data = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "s"}
    assert_oauth_error(post_token(h, data, None, via), "invalid_client", 401)
    for odd in ("nul\x00id", "nul%00id"):  # no client can have it (nor PostgreSQL store it)
        resp = post_token(h, {"grant_type": "client_credentials"}, (odd, "secret"), via)
        assert_oauth_error(resp, "invalid_client", 401)


def test_no_client_authentication_is_invalid_client(h, via):
    client_id, _ = h.create_client()
    assert_oauth_error(
        post_token(h, {"grant_type": "client_credentials"}, None, via), "invalid_client", 401
    )
    # A confidential client cannot pass as a public one by sending only its id.
    data = {"grant_type": "client_credentials", "client_id": client_id}
    assert_oauth_error(post_token(h, data, None, via), "invalid_client", 401)


def test_two_authentication_methods_are_invalid_request(h, via):
    client_id, secret = h.create_client()
    data = {"grant_type": "client_credentials", "client_secret": secret}
    resp = post_token(h, data, (client_id, secret), via)
    assert_oauth_error(resp, "invalid_request")


def test_basic_and_body_client_id_must_agree(h):
    client_id, secret = h.create_client()
    other_id, _ = h.create_client()
    data = {"grant_type": "client_credentials", "client_id": other_id}
    assert_oauth_error(post_token(h, data, (client_id, secret)), "invalid_request")


def test_auth_method_must_be_the_registered_one(h, via):
    basic_id, basic_secret = h.create_client()
    data = {"grant_type": "client_credentials", "client_id": basic_id}
    resp = post_token(h, {**data, "client_secret": basic_secret}, None, via)
    assert_oauth_error(resp, "invalid_client", 401)
    post_id, post_secret = h.create_client(auth_method="client_secret_post")
    resp = post_token(h, {"grant_type": "client_credentials"}, (post_id, post_secret), via)
    assert_oauth_error(resp, "invalid_client", 401)
    data = {"grant_type": "client_credentials", "client_id": post_id, "client_secret": post_secret}
    assert post_token(h, data, None, via).status_code == 200


def test_basic_credentials_are_form_urlencoded(h, via):
    """RFC 6749 §2.3.1: id and secret are form-urlencoded, then Basic-encoded."""
    from app.db import get_db
    from app.extensions import provider

    client_id = f"app:{secrets.token_hex(4)} +%/é"
    secret = "s3cr:t + /%=é&ü"
    with h.app.app_context():
        db = get_db()
        db.add(
            Client(
                id=client_id,
                secret_digest=digest(secret),
                token_endpoint_auth_method="client_secret_basic",
                grant_types=["client_credentials"],
                response_types=[],
                redirect_uris=[],
                scope="openid",
            )
        )
        db.commit()
        provider().clients.invalidate(client_id)

    def basic(user: str, password: str) -> dict:
        raw = f"{user}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode(), **via}

    encoded = basic(quote_plus(client_id), quote_plus(secret))
    resp = requests.post(
        h.url("/token"), data={"grant_type": "client_credentials"}, headers=encoded, timeout=10
    )
    assert resp.status_code == 200, resp.text
    claims = jwt.decode(resp.json()["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == client_id
    # Sent without the encoding, "+" would read as a space and ":" would split the id.
    raw = basic(client_id, secret)
    resp = requests.post(
        h.url("/token"), data={"grant_type": "client_credentials"}, headers=raw, timeout=10
    )
    assert_oauth_error(resp, "invalid_client", 401)


# --- authorization_code -----------------------------------------------------------------


def test_wrong_redirect_uri_is_invalid_grant_and_consumes_nothing(h):
    client, _, code, verifier = signed_in(h)
    resp = h.exchange(*client, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert_oauth_error(resp, "invalid_grant")
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    assert_oauth_error(post_token(h, data, client), "invalid_grant")  # redirect_uri omitted
    assert h.exchange(*client, code, verifier).status_code == 200


def test_wrong_or_missing_verifier_is_invalid_grant(h):
    client, _, code, verifier = signed_in(h)
    other, _ = pkce_pair()
    assert_oauth_error(h.exchange(*client, code, other), "invalid_grant")
    assert_oauth_error(h.exchange(*client, code, None), "invalid_grant")
    assert_oauth_error(h.exchange(*client, code, "short"), "invalid_grant")
    assert h.exchange(*client, code, verifier).status_code == 200


def test_verifier_without_challenge_is_invalid_grant(h):
    user = h.create_user()
    client = h.create_client(require_pkce=False)
    params = h.authorize_params(client[0], None)
    query = redirect_params(h.sign_in(requests.Session(), user, params))
    code = query["code"]
    verifier, _ = pkce_pair()
    assert_oauth_error(h.exchange(*client, code, verifier), "invalid_grant")
    assert h.exchange(*client, code, None).status_code == 200


def test_code_of_another_client_is_invalid_grant(h):
    client, _, code, verifier = signed_in(h)
    thief = h.create_client()
    assert_oauth_error(h.exchange(*thief, code, verifier), "invalid_grant")
    assert h.exchange(*client, code, verifier).status_code == 200


def test_unknown_code_is_invalid_grant(h):
    client = h.create_client()
    verifier, _ = pkce_pair()
    assert_oauth_error(h.exchange(*client, "not-a-code", verifier), "invalid_grant")
    data = {"grant_type": "authorization_code", "redirect_uri": REDIRECT}
    assert_oauth_error(post_token(h, data, client), "invalid_request")  # no code at all


def test_expired_code_is_invalid_grant(h):
    from app.db import get_db

    client, _, code, verifier = signed_in(h)
    with h.app.app_context():
        db = get_db()
        db.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.digest == digest(code))
            .values(expires_at=int(time.time()) - 1)
        )
        db.commit()
    assert_oauth_error(h.exchange(*client, code, verifier), "invalid_grant")


def test_client_without_the_grant_is_unauthorized(h):
    _, _, code, verifier = signed_in(h)
    cc_only = h.create_client(grant_types=["client_credentials"])
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    resp = post_token(h, {**data, "code_verifier": verifier}, cc_only)
    assert_oauth_error(resp, "unauthorized_client")


def test_code_reuse_revokes_the_tokens_it_issued(h):
    client, _, code, verifier = signed_in(h)
    first = h.exchange(*client, code, verifier).json()
    assert is_active(h, client, first["access_token"])
    assert is_active(h, client, first["refresh_token"])
    assert_oauth_error(h.exchange(*client, code, verifier), "invalid_grant")
    assert not is_active(h, client, first["access_token"])
    assert not is_active(h, client, first["refresh_token"])
    assert userinfo_status(h, first["access_token"]) == 401
    assert_oauth_error(refresh(h, client, first["refresh_token"]), "invalid_grant")


def test_failed_replays_revoke_nothing(h):
    """A stolen code replayed without the verifier or the client's secret is harmless."""
    client, _, code, verifier = signed_in(h)
    first = h.exchange(*client, code, verifier).json()
    other_verifier, _ = pkce_pair()
    assert_oauth_error(h.exchange(*client, code, other_verifier), "invalid_grant")
    assert_oauth_error(h.exchange(*client, code, None), "invalid_grant")
    assert_oauth_error(h.exchange(client[0], "wrong-secret", code, verifier), "invalid_client", 401)
    assert_oauth_error(h.exchange(*h.create_client(), code, verifier), "invalid_grant")
    assert is_active(h, client, first["access_token"])
    assert is_active(h, client, first["refresh_token"])
    assert userinfo_status(h, first["access_token"]) == 200


def test_concurrent_redemption_gives_exactly_one_success(h):
    user = h.create_user()
    client = h.create_client()
    for _ in range(4):
        code, verifier, _ = h.get_code(client[0], user)
        barrier = threading.Barrier(2)
        results: list[requests.Response] = []

        def redeem(code=code, verifier=verifier, barrier=barrier, results=results):
            barrier.wait()
            results.append(h.exchange(*client, code, verifier))

        threads = [threading.Thread(target=redeem) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 400], [r.text for r in results]
        loser = next(r for r in results if r.status_code == 400)
        assert_oauth_error(loser, "invalid_grant")


# --- refresh_token ----------------------------------------------------------------------


def test_refresh_rotates_and_keeps_the_grant(h):
    client, first = code_tokens(h)
    resp = refresh(h, client, first["refresh_token"])
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    second = resp.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == first["scope"]
    assert not is_active(h, client, first["refresh_token"])
    assert is_active(h, client, second["refresh_token"])
    assert userinfo_status(h, second["access_token"]) == 200


def test_reuse_after_the_grace_window_revokes_the_family(h):
    grace = h.app.config["REFRESH_REUSE_GRACE"]
    client, first = code_tokens(h)
    second = refresh(h, client, first["refresh_token"]).json()
    age_rotation(h, first["refresh_token"], grace + 1)
    assert_oauth_error(refresh(h, client, first["refresh_token"]), "invalid_grant")
    for token in (first["access_token"], second["access_token"], second["refresh_token"]):
        assert not is_active(h, client, token)
    assert userinfo_status(h, second["access_token"]) == 401
    assert_oauth_error(refresh(h, client, second["refresh_token"]), "invalid_grant")


def test_scope_can_narrow_but_not_widen(h):
    client, first = code_tokens(h)
    assert first["scope"] == "openid profile email"
    widened = refresh(h, client, first["refresh_token"], scope="openid profile email phone")
    assert_oauth_error(widened, "invalid_scope")
    narrowed = refresh(h, client, first["refresh_token"], scope="openid email")
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["scope"] == "openid email"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "openid email"
    info = requests.get(
        h.url("/userinfo"), headers={"Authorization": "Bearer " + body["access_token"]}
    ).json()
    assert "email" in info and "name" not in info
    # The narrowed grant cannot grow back.
    assert_oauth_error(
        refresh(h, client, body["refresh_token"], scope="openid profile"), "invalid_scope"
    )


def test_refresh_token_of_another_client_is_invalid_grant(h):
    client, first = code_tokens(h)
    thief = h.create_client()
    assert_oauth_error(refresh(h, thief, first["refresh_token"]), "invalid_grant")
    assert refresh(h, client, first["refresh_token"]).status_code == 200


def test_unknown_or_missing_refresh_token(h):
    client = h.create_client()
    assert_oauth_error(refresh(h, client, "not-a-token"), "invalid_grant")
    resp = post_token(h, {"grant_type": "refresh_token"}, client)
    assert_oauth_error(resp, "invalid_request")


@pytest.fixture(scope="module")
def graceful(tmp_path_factory, keys_dir) -> Iterator[Harness]:
    with serve(tmp_path_factory.mktemp("grace"), keys_dir, REFRESH_REUSE_GRACE=60) as harness:
        yield harness


def test_concurrent_retry_within_grace_gets_the_same_successor(graceful):
    g = graceful
    assert g.app.config["REFRESH_REUSE_GRACE"] == 60
    client, first = code_tokens(g)
    for _ in range(3):
        barrier = threading.Barrier(2)
        results: list[requests.Response] = []
        token = first["refresh_token"]

        def retry(token=token, barrier=barrier, results=results):
            barrier.wait()
            results.append(refresh(g, client, token))

        threads = [threading.Thread(target=retry) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
        a, b = (r.json() for r in results)
        assert a["refresh_token"] == b["refresh_token"]
        assert a["access_token"] == b["access_token"]
        # A later retry inside the window still gets that same successor, not a new chain.
        again = refresh(g, client, token).json()
        assert again["refresh_token"] == a["refresh_token"]
        assert is_active(g, client, a["access_token"])
        first = a
    # Outside the window the same retry is reuse: the whole family is revoked.
    age_rotation(g, token, 61)
    assert_oauth_error(refresh(g, client, token), "invalid_grant")
    assert not is_active(g, client, first["access_token"])
    assert_oauth_error(refresh(g, client, first["refresh_token"]), "invalid_grant")


def test_strict_reuse_detection_with_no_grace(tmp_path_factory, keys_dir):
    """REFRESH_REUSE_GRACE=0: even an immediate retry is reuse (RFC 9700 §4.14.2)."""
    with serve(tmp_path_factory.mktemp("strict"), keys_dir, REFRESH_REUSE_GRACE=0) as s:
        client, first = code_tokens(s)
        second = refresh(s, client, first["refresh_token"]).json()
        assert_oauth_error(refresh(s, client, first["refresh_token"]), "invalid_grant")
        assert not is_active(s, client, second["access_token"])
        assert_oauth_error(refresh(s, client, second["refresh_token"]), "invalid_grant")


# --- client_credentials -----------------------------------------------------------------


@pytest.mark.parametrize("scope", ["openid", "profile", "admin", "openid email"])
def test_client_credentials_scope_not_allowed(h, via, scope):
    client = h.create_client()
    resp = post_token(h, {"grant_type": "client_credentials", "scope": scope}, client, via)
    assert_oauth_error(resp, "invalid_scope")


def test_client_credentials_without_the_grant_is_unauthorized(h, via):
    client = h.create_client(grant_types=["authorization_code", "refresh_token"])
    resp = post_token(h, {"grant_type": "client_credentials"}, client, via)
    assert_oauth_error(resp, "unauthorized_client")


def test_client_credentials_refused_to_public_clients(h, via):
    """RFC 6749 §4.4: confidential clients only, even if registered for the grant."""
    for grants in (["authorization_code"], ["authorization_code", "client_credentials"]):
        client_id, secret = h.create_client(auth_method="none", grant_types=grants)
        assert secret is None
        data = {"grant_type": "client_credentials", "client_id": client_id}
        resp = post_token(h, data, None, via)
        body = resp.json()
        assert body["error"] in ("unauthorized_client", "invalid_client"), body
        assert_oauth_error(
            resp, body["error"], 400 if body["error"] == "unauthorized_client" else 401
        )
