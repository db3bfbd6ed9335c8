"""Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2): only what is implemented."""

from __future__ import annotations

from typing import Any

from app.oauth.authorize import ACR_PASSWORD, DISPLAYS, PROMPTS
from app.oauth.claims import ALL_CLAIMS
from app.oauth.client_auth import ASSERTION_ALGS, AUTH_METHODS


def metadata(p: Any) -> dict[str, Any]:
    """Build the discovery document for a Provider (see app.extensions)."""
    auth_methods = [m for m in AUTH_METHODS if m != "none"]
    signing_algs = p.keys.algs or ["RS256"]
    return {
        "issuer": p.issuer,
        "authorization_endpoint": p.url("/authorize"),
        "token_endpoint": p.url("/token"),
        "userinfo_endpoint": p.url("/userinfo"),
        "jwks_uri": p.url("/jwks.json"),
        "registration_endpoint": p.url("/register"),
        "introspection_endpoint": p.url("/introspect"),
        "revocation_endpoint": p.url("/revoke"),
        "scopes_supported": sorted(p.known_scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algs,
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            *ALL_CLAIMS,
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "at_hash",
        ],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": list(PROMPTS),
        "display_values_supported": list(DISPLAYS),
        "acr_values_supported": [ACR_PASSWORD],
    }
