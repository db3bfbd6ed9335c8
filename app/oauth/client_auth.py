"""Client authentication at the token, introspection and revocation endpoints.

Exactly one method per request (RFC 6749 §2.3): client_secret_basic,
client_secret_post, private_key_jwt (RFC 7523 §2.2, OIDC Core §9) or none.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import jwt

from app.models import Client
from app.oauth.errors import InvalidClient, InvalidRequest
from app.oauth.params import Params
from app.security import digest, same

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
# One hour (plus skew): common client libraries sign assertions for an hour; the jti is
# remembered for as long as the assertion lives.
MAX_ASSERTION_LIFETIME = 3600 + 60


@dataclass
class ClientAuthContext:
    """What client authentication needs from the outside world."""

    lookup: Callable[[str], Client | None]
    audiences: list[str]
    claim_once: Callable[[str, int], bool]
    client_jwks: Callable[[Client], dict[str, Any]]


def _basic_credentials(authorization: str) -> tuple[str, str]:
    _, _, value = authorization.partition(" ")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("Malformed Basic credentials.") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise InvalidClient("Malformed Basic credentials.")
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(
    authorization: str | None, params: Params, ctx: ClientAuthContext
) -> Client:
    """Identify and authenticate the client; raise InvalidClient/InvalidRequest."""
    uses_basic = bool(authorization) and authorization.split(" ", 1)[0].lower() == "basic"
    assertion_type = params.get("client_assertion_type")
    assertion = params.get("client_assertion")
    body_secret = params.get("client_secret")
    methods = [
        uses_basic,
        assertion is not None or assertion_type is not None,
        body_secret is not None,
    ]
    if sum(methods) > 1:
        raise InvalidRequest("Use exactly one client authentication method.")
    if uses_basic:
        client_id, secret = _basic_credentials(authorization or "")
        body_id = params.get("client_id")
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("client_id does not match the authenticated client.")
        return _check_secret(ctx.lookup(client_id), secret, "client_secret_basic")
    if assertion is not None or assertion_type is not None:
        return _check_assertion(params, assertion, assertion_type, ctx)
    client_id = params.get("client_id")
    if client_id is None:
        raise InvalidClient("Client authentication is required.")
    client = ctx.lookup(client_id)
    if body_secret is not None:
        return _check_secret(client, body_secret, "client_secret_post")
    if client is None or client.token_endpoint_auth_method != "none":
        raise InvalidClient("Client authentication failed.")
    return client


def _check_secret(client: Client | None, secret: str, method: str) -> Client:
    fail = InvalidClient()  # carries the Basic challenge of every 401 invalid_client
    presented = digest(secret)
    if client is None or client.secret_digest is None:
        same(presented, presented)  # same work whether or not the client exists
        raise fail
    if client.token_endpoint_auth_method != method:
        fail.detail = f"client registered for {client.token_endpoint_auth_method}"
        raise fail
    if not same(presented, client.secret_digest):
        raise fail
    if client.secret_expires_at and client.secret_expires_at < time.time():
        fail.description = "The client secret has expired."
        raise fail
    return client


def _check_assertion(
    params: Params, assertion: str | None, assertion_type: str | None, ctx: ClientAuthContext
) -> Client:
    """RFC 7523 §3: iss = sub = client_id, aud = this server, exp, single-use jti."""
    if assertion_type != JWT_BEARER or assertion is None:
        raise InvalidClient("Unsupported or incomplete client assertion.")
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise InvalidClient("The client assertion is malformed.") from None
    client_id = unverified.get("sub")
    if not isinstance(client_id, str) or unverified.get("iss") != client_id:
        raise InvalidClient("The client assertion must have iss and sub equal to client_id.")
    body_id = params.get("client_id")
    if body_id is not None and body_id != client_id:
        raise InvalidClient("client_id does not match the client assertion.")
    client = ctx.lookup(client_id)
    if client is None or client.token_endpoint_auth_method != "private_key_jwt":
        raise InvalidClient()
    key = _assertion_key(client, header, ctx)
    try:
        claims = jwt.decode(
            assertion,
            key,
            algorithms=ASSERTION_ALGS,
            audience=ctx.audiences,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise InvalidClient("The client assertion is invalid.", detail=str(exc)) from None
    lifetime = int(claims["exp"]) - int(time.time())
    if lifetime > MAX_ASSERTION_LIFETIME:
        raise InvalidClient("The client assertion lives too long.")
    if not ctx.claim_once(f"assertion:{client_id}:{claims['jti']}", lifetime + 10):
        raise InvalidClient("The client assertion was already used.")
    return client


def _assertion_key(client: Client, header: dict[str, Any], ctx: ClientAuthContext) -> Any:
    if header.get("alg") not in ASSERTION_ALGS:
        raise InvalidClient("The client assertion algorithm is not allowed.")
    try:
        jwks = jwt.PyJWKSet.from_dict(ctx.client_jwks(client))
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        raise InvalidClient("The client's keys could not be loaded.") from None
    kid = header.get("kid")
    candidates = [k for k in jwks.keys if kid is None or k.key_id == kid]
    if len(candidates) != 1:
        raise InvalidClient("No unique client key matches the assertion.")
    return candidates[0].key


class ClientJwks:
    """A client's public keys: registered ``jwks``, or ``jwks_uri`` fetched and cached."""

    def __init__(self, timeout: float = 3.0, ttl: float = 300.0, allow_http: bool = False):
        self._timeout = timeout
        self._ttl = ttl
        self._allow_http = allow_http
        self._cache: dict[str, tuple[dict[str, Any], float]] = {}

    def __call__(self, client: Client) -> dict[str, Any]:
        if client.jwks:
            return client.jwks
        if not client.jwks_uri:
            raise InvalidClient("The client has no registered keys.")
        cached = self._cache.get(client.jwks_uri)
        if cached is not None and time.monotonic() - cached[1] < self._ttl:
            return cached[0]
        jwks = self._fetch(client.jwks_uri)
        self._cache[client.jwks_uri] = (jwks, time.monotonic())
        return jwks

    def _fetch(self, uri: str) -> dict[str, Any]:
        import json
        import urllib.request

        if not (uri.startswith("https://") or (self._allow_http and uri.startswith("http://"))):
            raise InvalidClient("The client's jwks_uri is not https.")
        request = urllib.request.Request(uri, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked above
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as resp:  # noqa: S310
                body = resp.read(256 * 1024)
            jwks = json.loads(body)
        except (OSError, ValueError, RecursionError) as exc:
            raise InvalidClient(
                "The client's jwks_uri could not be fetched.", detail=str(exc)
            ) from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise InvalidClient("The client's jwks_uri did not return a JWK Set.")
        return jwks
