"""Malformed, missing and hostile input on every endpoint: never a 5xx, always the right
kind of answer (RFC 6749 §5.2-style JSON for API endpoints, HTML or a redirect for pages).

The corpus is generated deterministically (a fixed seed), so a failure names a case that
can be replayed.
"""

from __future__ import annotations

import base64
import json
import random
import socket
from http.client import HTTPResponse
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers import REDIRECT, Harness, form_fields, pkce_pair

SEED = 20240611

# Values that have broken parsers somewhere: bytes that are not UTF-8, NUL, lengths past
# the limits, numbers past any integer type, structure where a string belongs, unicode.
HOSTILE: list[str | bytes] = [
    "",
    " ",
    "\x00",
    "a\x00b",
    b"\xff\xfe\xfd",
    b"\xc3\x28",
    b"\xed\xa0\x80",  # an encoded UTF-16 surrogate
    "A" * 5000,
    "B" * 70000,
    "9" * 400,
    "-1",
    "1e309",
    "NaN",
    "0x7fffffffffffffff",
    "[]",
    "{}",
    '{"a": [1, {"b": null}]}',
    "[" * 500 + "]" * 500,
    "é漢字🔥\u202e\ufeff\u200b",
    "%",
    "%zz",
    "%00",
    "+",
    "&=&==",
    "\r\nX-Injected: 1",
    "<script>alert(1)</script>",
    "' OR '1'='1' --",
    "../../../etc/passwd",
    "a.b.c",
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "openid openid\topenid",
    "javascript:alert(1)",
]

NAMES = ["a[b][c]", "scope[]", "grant_type[0]", "[", "]]", "", "\x00", "é"]


def b64(raw: bytes | str) -> str:
    return base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()


def b64url(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


# JWTs whose header or payload nest deeper than any parser's recursion limit.
DEEP_JWTS = [
    b64url("[" * 2500) + ".e30.AA",
    b64url('{"alg":"RS256","typ":"at+jwt"}') + "." + b64url("[" * 2500) + ".AA",
]
HOSTILE += DEEP_JWTS


AUTHORIZATIONS = [
    "",
    "Basic",
    "Basic ",
    "Basic !!!!",
    "Basic ====",
    "Basic " + b64("no-colon"),
    "Basic " + b64(":secret"),
    "Basic " + b64("id:"),
    "Basic " + b64(b"\xff\xfe:\xfd"),
    "Basic " + b64("%zz:%ff%00"),
    "Basic " + b64("a:b") + " trailing",
    "Basic " + "A" * 9000,
    "basic " + b64("x:y"),
    "Basic " + b64("a%00b:x"),
    "Basic " + b64("a\x00b:x\x00"),
    "Bearer",
    "Bearer ",
    "Bearer a.b.c",
    "Bearer " + "A" * 9000,
    "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "Bearer " + b64('{"alg":"RS256","kid":[]}') + ".e30.AA",
    "Bearer " + b64('{"alg":"HS256","kid":"x"}') + ".e30.AA",
    *("Bearer " + token for token in DEEP_JWTS),
    "Digest username=x",
    "Negotiate YII=",
    "\x7f",
]


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _pct(value: str | bytes) -> str:
    return "".join(f"%{b:02X}" for b in _encode(value))


def form(pairs: list[tuple[str | bytes, str | bytes]], raw: bool = False) -> bytes:
    """A form body; ``raw`` leaves the bytes unescaped, as a broken client would."""
    if raw:
        return b"&".join(_encode(k) + b"=" + _encode(v) for k, v in pairs)
    return "&".join(f"{_pct(k)}={_pct(v)}" for k, v in pairs).encode()


def browser() -> requests.Session:
    """Pages are fetched by browsers, which ask for HTML."""
    session = requests.Session()
    session.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    return session


def query(pairs: list[tuple[str | bytes, str | bytes]]) -> str:
    """A query string; values past what any HTTP server takes in a URL go in bodies."""
    return form([(k, v) for k, v in pairs if len(v) <= 8000]).decode()


def check(resp: requests.Response, kind: str, label: str) -> None:
    where = f"{label} -> {resp.status_code} {resp.text[:200]!r}"
    assert resp.status_code < 500, where
    ctype = resp.headers.get("Content-Type", "")
    if kind == "page":
        if resp.status_code in (302, 303):
            assert resp.headers.get("Location"), where
        else:
            assert ctype.startswith("text/html"), (ctype, where)
        return
    if resp.status_code == 204:
        return
    assert ctype.startswith("application/json"), (ctype, where)
    body = resp.json()
    assert isinstance(body, dict), where
    if resp.status_code >= 400:
        assert resp.headers.get("Cache-Control") == "no-store", where
        if resp.headers.get("WWW-Authenticate") == 'Bearer realm="tessera"':
            assert body == {}, where  # RFC 6750 §3.1: no credentials, no error code
        else:
            assert isinstance(body.get("error"), str), where


class World:
    """What the fuzzer needs to get past the first checks: clients, a user, tokens."""

    def __init__(self, h: Harness):
        self.h = h
        self.user = h.create_user()
        self.client = h.create_client()
        self.public_id, _ = h.create_client(
            auth_method="none", grant_types=["authorization_code", "refresh_token"]
        )
        code, verifier, _ = h.get_code(self.client[0], self.user)
        self.tokens = h.exchange(*self.client, code, verifier).json()
        self.verifier, self.challenge = pkce_pair()
        reg = requests.post(h.url("/register"), json={"redirect_uris": [REDIRECT]}, timeout=10)
        assert reg.status_code == 201, reg.text
        self.registration = reg.json()

    def basic(self) -> dict[str, str]:
        return {"Authorization": "Basic " + b64(f"{self.client[0]}:{self.client[1]}")}


@pytest.fixture(scope="module")
def world(live) -> World:
    return World(live)


def cases(names: list[str], base: dict[str, str], rng: random.Random, per_name: int = 4):
    """One hostile value (or a repeat, or a hostile name) at a time over a valid base."""
    out: list[tuple[str, list[tuple[str | bytes, str | bytes]], bool]] = []
    for name in names:
        for value in [*rng.sample(HOSTILE, per_name), "a\x00b", rng.choice(DEEP_JWTS)]:
            pairs = [(k, v) for k, v in base.items() if k != name] + [(name, value)]
            out.append((f"{name}={value!r:.40}", pairs, rng.random() < 0.3))
        out.append((f"{name} repeated", [*base.items(), (name, "x"), (name, "y")], False))
        out.append((f"{name} missing", [(k, v) for k, v in base.items() if k != name], False))
    for name in NAMES:
        out.append((f"name {name!r}", [*base.items(), (name, rng.choice(HOSTILE))], True))
    return out


AUTHORIZE_PARAMS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "id_token_hint",
    "login_hint",
    "response_mode",
    "request",
    "request_uri",
    "display",
    "ui_locales",
    "acr_values",
]


def test_authorize(world):
    h, rng, b = world.h, random.Random(SEED), browser()
    base = {
        "response_type": "code",
        "client_id": world.client[0],
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "s",
        "code_challenge": world.challenge,
        "code_challenge_method": "S256",
    }
    for label, pairs, raw in cases(AUTHORIZE_PARAMS, base, rng, per_name=3):
        body = form(pairs, raw)
        if rng.random() < 0.5:
            resp = b.get(h.url("/authorize?" + query(pairs)), allow_redirects=False)
        else:
            resp = b.post(
                h.url("/authorize"),
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                allow_redirects=False,
            )
        check(resp, "page", "authorize " + label)
    for kw in ({"json": base}, {"files": {"client_id": (None, world.client[0])}}):
        check(b.post(h.url("/authorize"), allow_redirects=False, **kw), "page", str(kw))
    for method in ("PUT", "DELETE", "PATCH"):
        check(b.request(method, h.url("/authorize")), "page", method)


def _login_page(h: Harness) -> tuple[requests.Session, dict[str, str]]:
    session = browser()
    page = session.get(h.url("/login"))
    assert page.status_code == 200
    return session, form_fields(page.text)


def test_login(world):
    h, rng = world.h, random.Random(SEED + 1)
    b, fields = _login_page(h)
    base = {"csrf_token": fields["csrf_token"], "username": "nobody", "password": "x" * 10}
    for label, pairs, raw in cases(["username", "password", "csrf_token", "ix"], base, rng):
        resp = b.post(
            h.url("/login"),
            data=form(pairs, raw),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )
        check(resp, "page", "login " + label)
    for value in rng.sample(HOSTILE, 10):
        resp = b.get(h.url("/login?" + query([("ix", value), ("login_hint", value)])))
        check(resp, "page", f"login GET {value!r:.40}")
    check(b.post(h.url("/login"), json=base, allow_redirects=False), "page", "json")
    check(b.put(h.url("/login")), "page", "PUT /login")


def test_consent(world):
    h, rng = world.h, random.Random(SEED + 2)
    user = h.create_user()
    b = browser()
    params = h.authorize_params(world.client[0], world.challenge, scope="openid email")
    resp = h.sign_in(b, user, params, consent=None)
    assert urlsplit(resp.url).path == "/consent" and resp.status_code == 200
    fields = form_fields(resp.text)
    base = {"csrf_token": fields["csrf_token"], "ix": fields["ix"], "decision": "maybe"}
    for label, pairs, raw in cases(["ix", "decision", "csrf_token"], base, rng):
        resp = b.post(
            h.url("/consent"),
            data=form(pairs, raw),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )
        check(resp, "page", "consent " + label)
    for value in rng.sample(HOSTILE, 10):
        check(b.get(h.url("/consent?" + query([("ix", value)]))), "page", f"consent {value!r:.40}")
    check(browser().get(h.url("/consent?ix=x")), "page", "consent without a session")
    check(b.delete(h.url("/consent")), "page", "DELETE /consent")


BACK_CHANNEL = {
    "/token": (
        [
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "refresh_token",
            "scope",
            "client_id",
            "client_secret",
            "client_assertion",
            "client_assertion_type",
        ],
        "grant_type",
    ),
    "/introspect": (["token", "token_type_hint", "client_id", "client_secret"], "token"),
    "/revoke": (["token", "token_type_hint", "client_id", "client_secret"], "token"),
}


@pytest.mark.parametrize("path", list(BACK_CHANNEL))
def test_back_channel(world, path):
    h, rng = world.h, random.Random(SEED + len(path))
    names, _ = BACK_CHANNEL[path]
    if path == "/token":
        bases = [
            {"grant_type": "client_credentials"},
            {"grant_type": "refresh_token", "refresh_token": world.tokens["refresh_token"]},
            {
                "grant_type": "authorization_code",
                "code": "x" * 43,
                "redirect_uri": REDIRECT,
                "code_verifier": world.verifier,
            },
        ]
    else:
        bases = [{"token": world.tokens["access_token"]}, {"token": "opaque"}]
    for base in bases:
        for label, pairs, raw in cases(names, base, rng, per_name=2):
            headers = world.basic() if rng.random() < 0.8 else {"Authorization": "Basic x"}
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            resp = requests.post(h.url(path), data=form(pairs, raw), headers=headers)
            check(resp, "api", f"{path} {label}")
    for auth in AUTHORIZATIONS:
        resp = requests.post(
            h.url(path),
            data={"grant_type": "client_credentials", "token": "x"},
            headers={"Authorization": auth},
        )
        check(resp, "api", f"{path} Authorization {auth!r:.40}")
    public = {"client_id": world.public_id, "grant_type": "client_credentials", "token": "x"}
    check(requests.post(h.url(path), data=public), "api", f"{path} public client")
    for kw in (
        {"json": {"grant_type": "client_credentials", "token": "x"}},
        {"files": {"grant_type": (None, "client_credentials")}},
        {"data": b"\xff" * 64, "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        {
            "data": b"x=" + b"A" * 300_000,
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        {"data": "&".join(f"p{i}=1" for i in range(500))},
        {"data": b"grant_type=client_credentials", "headers": {"Content-Type": "text/plain"}},
    ):
        headers = {**world.basic(), **kw.pop("headers", {})}
        check(requests.post(h.url(path), headers=headers, **kw), "api", f"{path} {kw!r:.60}")
    for method in ("GET", "PUT", "DELETE"):
        check(requests.request(method, h.url(path)), "api", f"{method} {path}")


def test_userinfo(world):
    h = world.h
    for auth in AUTHORIZATIONS:
        for method in ("GET", "POST"):
            resp = requests.request(method, h.url("/userinfo"), headers={"Authorization": auth})
            check(resp, "api", f"userinfo {method} {auth!r:.40}")
    rng = random.Random(SEED + 3)
    for value in rng.sample(HOSTILE, 16):
        resp = requests.post(
            h.url("/userinfo"),
            data=form([("access_token", value)], raw=rng.random() < 0.5),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        check(resp, "api", f"userinfo body {value!r:.40}")
        check(requests.get(h.url("/userinfo?" + query([("access_token", value)]))), "api", "q")
    check(requests.post(h.url("/userinfo"), json={"access_token": "x"}), "api", "json")
    check(requests.delete(h.url("/userinfo")), "api", "DELETE /userinfo")


def _json_variants(rng: random.Random) -> list[object]:
    fields = [
        "redirect_uris",
        "token_endpoint_auth_method",
        "grant_types",
        "response_types",
        "client_name",
        "scope",
        "jwks",
        "jwks_uri",
        "contacts",
        "logo_uri",
        "application_type",
        "id_token_signed_response_alg",
        "client_id",
    ]
    shapes: list[object] = [
        None,
        True,
        0,
        10**400,
        -1.5,
        "",
        "x" * 5000,
        [],
        [None],
        [1, 2],
        ["javascript:alert(1)"],
        {},
        {"keys": [{}]},
        {"keys": "nope"},
        "é漢字\u0000",
    ]
    variants: list[object] = [[], "string", 1, None, [{"redirect_uris": [REDIRECT]}]]
    for name in fields:
        for value in rng.sample(shapes, 5):
            variants.append({"redirect_uris": [REDIRECT], name: value})
    return variants


def test_register(world):
    h, rng = world.h, random.Random(SEED + 4)
    for metadata in _json_variants(rng):
        body = json.dumps(metadata) if not isinstance(metadata, int) or metadata < 10**300 else ""
        resp = requests.post(
            h.url("/register"), data=body, headers={"Content-Type": "application/json"}
        )
        check(resp, "api", f"register {body:.80}")
    for raw in (
        b"\xff\xfe{}",
        b"{" * 10,
        b"[" * 100_000,
        b'{"redirect_uris": ["' + b"\xff" * 10 + b'"]}',
        b'{"client_name": 1e999, "redirect_uris": ["http://127.0.0.1/cb"]}',
        b'{"redirect_uris": ["http://127.0.0.1/cb"], "redirect_uris": 5}',
        b"",
    ):
        resp = requests.post(
            h.url("/register"), data=raw, headers={"Content-Type": "application/json"}
        )
        check(resp, "api", f"register raw {raw[:40]!r}")
    check(requests.post(h.url("/register"), data={"redirect_uris": REDIRECT}), "api", "form")
    for auth in AUTHORIZATIONS[:8]:
        resp = requests.post(h.url("/register"), json={}, headers={"Authorization": auth})
        check(resp, "api", f"register auth {auth!r:.40}")


def test_registration_management(world):
    h, reg = world.h, world.registration
    client_ids = [reg["client_id"], "nope", "%00", "%FF%FE", "A" * 3000, "..%2F..%2Fhealth", "é"]
    for client_id in client_ids:
        bearers = [a for a in AUTHORIZATIONS if a.startswith("Bearer")][:5]
        for auth in ("Bearer " + reg["registration_access_token"], *bearers):
            for method in ("GET", "PUT", "DELETE"):
                # only PUT bodies, so the real client's registration survives this test
                kw = {"data": b"[" * 50_000} if method == "PUT" else {}
                if method == "DELETE" and auth.endswith(reg["registration_access_token"]):
                    continue
                resp = requests.request(
                    method,
                    h.url("/register/" + client_id),
                    headers={"Authorization": auth, "Content-Type": "application/json"},
                    **kw,
                )
                check(resp, "api", f"{method} /register/{client_id:.20} {auth:.30}")
    put = {"client_id": reg["client_id"], "redirect_uris": [REDIRECT]}
    for value in (None, 5, [], {"x": 1}, "x" * 5000):
        for name in ("client_id", "client_secret", "redirect_uris", "scope"):
            resp = requests.put(
                reg["registration_client_uri"],
                json={**put, name: value},
                headers={"Authorization": "Bearer " + reg["registration_access_token"]},
            )
            check(resp, "api", f"PUT {name}={value!r:.30}")


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks.json",
        "/health/live",
        "/health/ready",
    ],
)
def test_documents_and_health(world, path):
    h = world.h
    for value in HOSTILE[:12]:
        resp = requests.get(
            h.url(path + "?" + query([("x", value)])), headers={"If-None-Match": "\x00"}
        )
        assert resp.status_code == 200, (path, value)
        check(resp, "api", f"{path} {value!r:.20}")
    for method in ("POST", "PUT", "DELETE"):
        check(requests.request(method, h.url(path), data=b"\xff"), "api", f"{method} {path}")


def raw_request(h: Harness, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Bytes on the wire as they come: nothing percent-encoded, nothing checked."""
    host, port = urlsplit(h.base_url).hostname, urlsplit(h.base_url).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        resp = HTTPResponse(sock)
        resp.begin()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/authorize", "page"),
        ("/login", "page"),
        ("/consent", "page"),
        ("/token", "api"),
        ("/introspect", "api"),
        ("/revoke", "api"),
        ("/userinfo", "api"),
        ("/register", "api"),
    ],
)
def test_raw_bytes_on_the_wire(world, path, kind):
    h = world.h
    bodies = [
        b"grant_type=\xff\xfe&token=\xc3\x28&client_id=\x00",
        b"\xff" * 100,
        b'{"redirect_uris": ["\xff"]}',
    ]
    for method, body in [("GET", b""), *(("POST", b) for b in bodies)]:
        request = (
            f"{method} {path}?client_id=".encode()
            + b"\xff\xfe%ff%00&scope=\xe9"
            + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic \xff\xfe\r\n"
            + b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        status, headers, payload = raw_request(h, request)
        label = f"{method} {path} {body[:20]!r} -> {status} {payload[:200]!r}"
        assert status < 500, label
        ctype = headers.get("content-type", "")
        if kind == "page" and status not in (302, 303):
            assert ctype.startswith("text/html"), label
        elif kind == "api":
            assert ctype.startswith("application/json"), label
            assert isinstance(json.loads(payload), dict), label
