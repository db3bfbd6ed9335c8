"""The authorization code flow end to end over HTTP, checked by hand-rolled requests."""

import jwt
import requests

from tests.helpers import assert_oauth_error


def test_code_flow_issues_tokens_and_userinfo(h):
    user = h.create_user()
    client_id, secret = h.create_client()
    code, verifier, params = h.get_code(client_id, user)
    resp = h.exchange(client_id, secret, code, verifier)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer"
    jwks = jwt.PyJWKSet.from_dict(requests.get(h.url("/jwks.json")).json())
    header = jwt.get_unverified_header(body["id_token"])
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        body["id_token"], key.key, algorithms=["RS256"], audience=client_id, issuer=h.issuer
    )
    assert claims["sub"] == user.id
    assert claims["nonce"] == params["nonce"]
    info = requests.get(
        h.url("/userinfo"), headers={"Authorization": "Bearer " + body["access_token"]}
    )
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == user.id
    assert info.json()["email"] == user.email
    # the code is single use
    again = h.exchange(client_id, secret, code, verifier)
    assert_oauth_error(again, "invalid_grant")
    revoked = requests.get(
        h.url("/userinfo"), headers={"Authorization": "Bearer " + body["access_token"]}
    )
    assert revoked.status_code == 401
