"""Verification of our own JWTs (app.oauth.tokens): every way a token can be wrong."""

import base64
import json
import time

import jwt
import pytest

from app.keys import KeyStore, generate_key_file
from app.oauth.errors import InvalidToken
from app.oauth.tokens import Lifetimes, TokenIssuer

ISSUER = "https://id.example.com"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("k")
    generate_key_file(folder, "ES256")
    generate_key_file(folder, "RS256")
    return TokenIssuer(ISSUER, KeyStore.from_dir(folder), Lifetimes(), audience=ISSUER)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _sign(issuer, claims, **headers):
    key = issuer.keys.signing_key("RS256")
    hdr = {"typ": "at+jwt", "kid": key.kid, **headers}
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers=hdr)


def _claims(**over):
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "u", "aud": ISSUER, "iat": now, "exp": now + 60, "jti": "j"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip_with_each_algorithm(issuer):
    for alg in ("RS256", "ES256"):
        key = issuer.keys.signing_key(alg)
        token = jwt.encode(
            _claims(), key.private_key, algorithm=alg, headers={"typ": "at+jwt", "kid": key.kid}
        )
        assert issuer.decode_access_token(token)["sub"] == "u"
    token, claims = issuer.access_token(client_id="c", subject="s", scope="openid")
    assert issuer.decode_access_token(token)["jti"] == claims["jti"]


@pytest.mark.parametrize(
    "claims",
    [
        _claims(iss="https://evil.example.com"),
        _claims(aud="someone-else"),
        _claims(exp=int(time.time()) - 60),
        _claims(exp="tomorrow"),
        _claims(iat=None),
        _claims(sub=None),
        _claims(nbf=int(time.time()) + 600),
    ],
)
def test_bad_claims_are_refused(issuer, claims):
    with pytest.raises(InvalidToken):
        issuer.decode_access_token(_sign(issuer, claims))


def test_audience_list_is_accepted(issuer):
    token = _sign(issuer, _claims(aud=["other", ISSUER]))
    assert issuer.decode_access_token(token)["sub"] == "u"


def test_wrong_type_kid_alg_signature_and_shape_are_refused(issuer):
    good = _sign(issuer, _claims())
    head, payload, sig = good.split(".")
    rs = issuer.keys.signing_key("RS256")
    bad = [
        _sign(issuer, _claims(), typ="JWT"),  # an ID token is not an access token
        _sign(issuer, _claims(), kid="unknown"),
        _sign(issuer, _claims(), crit=["exp"]),
        f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': rs.kid})}.{payload}.",
        f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': rs.kid})}.{payload}.{sig}",
        f"{head}.{_b64(_claims(sub='mallory'))}.{sig}",  # payload swapped
        f"{head}.{payload}.{sig[:-4]}AAAA",
        f"{head}.{payload}",
        f"{head}.{payload}.{sig}.x",
        f"{head}!.{payload}.{sig}",
        "a.b.c",
        "",
        "x" * 9000,
    ]
    for token in bad:
        with pytest.raises(InvalidToken):
            issuer.decode_access_token(token)


def test_id_token_hint_ignores_expiry_but_not_the_signature(issuer):
    hint = issuer.id_token(client_id="c", subject="u", auth_time=1, alg="RS256")
    assert issuer.decode_id_token_hint(hint)["sub"] == "u"
    access, _ = issuer.access_token(client_id="c", subject="u", scope="")
    with pytest.raises(InvalidToken):
        issuer.decode_id_token_hint(access)
    key = issuer.keys.signing_key("RS256")
    old = jwt.encode(
        _claims(exp=1, aud="c"), key.private_key, algorithm="RS256", headers={"kid": key.kid}
    )
    assert issuer.decode_id_token_hint(old)["sub"] == "u"
