"""Dynamic client registration: metadata validation (RFC 7591 §2, RFC 7592, RFC 8252)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from app.models import Client
from app.oauth.client_auth import AUTH_METHODS
from app.oauth.errors import InvalidClientMetadata, InvalidRedirectUri

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
URI_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri", "jwks_uri")
TEXT_FIELDS = ("client_name", "software_id", "software_version")
FORBIDDEN_SCHEMES = {"javascript", "data", "vbscript", "file", "blob", "about"}
MAX_URIS = 20


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri: Any, application_type: str) -> str:
    """https; http only on loopback (RFC 8252 §7.3); private-use schemes for native apps."""
    if not isinstance(uri, str) or not uri or len(uri) > 2048 or any(c.isspace() for c in uri):
        raise InvalidRedirectUri("Each redirect URI must be a non-empty string without spaces.")
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise InvalidRedirectUri(f"Malformed redirect URI: {uri}") from None
    scheme = parts.scheme.lower()
    if not scheme or "#" in uri:
        raise InvalidRedirectUri("Redirect URIs must be absolute and have no fragment.")
    if scheme in FORBIDDEN_SCHEMES:
        raise InvalidRedirectUri(f"The {scheme}: scheme is not allowed.")
    if scheme == "https":
        if not parts.hostname:
            raise InvalidRedirectUri("An https redirect URI needs a host.")
    elif scheme == "http":
        if not _is_loopback(parts.hostname):
            raise InvalidRedirectUri("http redirect URIs are allowed only on loopback.")
    elif application_type != "native" or "." not in scheme:
        # RFC 8252 §7.1: reverse-domain private-use schemes, native apps only.
        raise InvalidRedirectUri(
            "Custom schemes are allowed only for native apps, as reverse "
            "domain names (com.example.app:/callback)."
        )
    return uri


def _check_uri(name: str, value: Any, allow_http: bool) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidClientMetadata(f"{name} must be a URL.")
    parts = urlsplit(value)
    ok = parts.scheme == "https" or (allow_http and parts.scheme == "http")
    if not ok or not parts.hostname:
        raise InvalidClientMetadata(f"{name} must be an https URL.")
    return value


def _string_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings.")
    return value


def validate_metadata(
    data: Any, *, known_scopes: set[str], signing_algs: list[str], allow_http: bool
) -> dict[str, Any]:
    """Return normalised metadata or raise the RFC 7591 §3.2.2 error."""
    if not isinstance(data, dict):
        raise InvalidClientMetadata("The request body must be a JSON object.")
    if _contains_nul(data):
        raise InvalidClientMetadata("Metadata values must not contain NUL characters.")
    app_type = data.get("application_type", "web")
    if app_type not in ("web", "native"):
        raise InvalidClientMetadata("application_type must be web or native.")
    method = data.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(f"token_endpoint_auth_method must be one of {AUTH_METHODS}.")
    grants = _string_list("grant_types", data.get("grant_types", ["authorization_code"]))
    responses = _string_list("response_types", data.get("response_types", ["code"]))
    if not grants or not set(grants) <= set(GRANT_TYPES):
        raise InvalidClientMetadata(f"grant_types must be drawn from {GRANT_TYPES}.")
    if not set(responses) <= {"code"}:
        raise InvalidClientMetadata("Only the code response type is supported.")
    if ("authorization_code" in grants) != ("code" in responses):
        raise InvalidClientMetadata("grant_types and response_types are inconsistent.")
    if method == "none" and "client_credentials" in grants:
        raise InvalidClientMetadata("A public client cannot use client_credentials.")
    if method == "none" and "authorization_code" not in grants:
        raise InvalidClientMetadata("A public client must use the code flow with PKCE.")
    uris = _string_list("redirect_uris", data.get("redirect_uris", []))
    if "authorization_code" in grants and not uris:
        raise InvalidRedirectUri("redirect_uris is required for the authorization code flow.")
    if len(uris) > MAX_URIS:
        raise InvalidRedirectUri(f"At most {MAX_URIS} redirect URIs.")
    meta: dict[str, Any] = {
        "redirect_uris": [check_redirect_uri(u, app_type) for u in uris],
        "token_endpoint_auth_method": method,
        "grant_types": grants,
        "response_types": responses,
        "application_type": app_type,
        "scope": _scope(data.get("scope"), known_scopes),
        "contacts": _string_list("contacts", data.get("contacts", [])),
    }
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise InvalidClientMetadata(f"{name} must be a string of at most 255 characters.")
        meta[name] = value
    for name in URI_FIELDS:
        meta[name] = _check_uri(name, data[name], allow_http) if data.get(name) else None
    meta["jwks"] = _jwks(data.get("jwks"))
    if meta["jwks"] and meta["jwks_uri"]:
        raise InvalidClientMetadata("Use jwks or jwks_uri, not both.")
    if method == "private_key_jwt" and not (meta["jwks"] or meta["jwks_uri"]):
        raise InvalidClientMetadata("private_key_jwt needs jwks or jwks_uri.")
    alg = data.get("id_token_signed_response_alg", "RS256")
    if alg not in signing_algs:
        raise InvalidClientMetadata(f"id_token_signed_response_alg must be one of {signing_algs}.")
    meta["id_token_signed_response_alg"] = alg
    return meta


def _contains_nul(data: Any) -> bool:
    """NUL anywhere in the metadata (PostgreSQL text cannot store it); no recursion."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _scope(value: Any, known: set[str]) -> str:
    if value is None:
        return " ".join(
            s
            for s in ("openid", "profile", "email", "address", "phone", "offline_access")
            if s in known
        )
    if not isinstance(value, str):
        raise InvalidClientMetadata("scope must be a space-separated string.")
    scopes = value.split()
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise InvalidClientMetadata(f"Unknown scope: {' '.join(unknown)}.")
    return " ".join(dict.fromkeys(scopes))


def _jwks(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise InvalidClientMetadata("jwks must be a JWK Set with at least one key.")
    for key in value["keys"]:
        if not isinstance(key, dict) or any(
            p in key for p in ("d", "p", "q", "dp", "dq", "qi", "k")
        ):
            raise InvalidClientMetadata("jwks must hold public keys only.")
    return value


def apply_metadata(client: Client, meta: dict[str, Any]) -> None:
    for name, value in meta.items():
        setattr(client, name, value)


def client_metadata(client: Client) -> dict[str, Any]:
    """The registered metadata as returned by RFC 7591 §3.2.1 and RFC 7592 §3."""
    out: dict[str, Any] = {
        "client_id": client.id,
        "client_id_issued_at": client.issued_at,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": client.grant_types,
        "response_types": client.response_types,
        "application_type": client.application_type,
        "scope": client.scope,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
    }
    if client.secret_digest is not None:
        out["client_secret_expires_at"] = client.secret_expires_at
    if client.contacts:
        out["contacts"] = client.contacts
    for name in (*TEXT_FIELDS, *URI_FIELDS, "jwks"):
        value = getattr(client, name)
        if value:
            out[name] = value
    return out
