"""Scopes and the claims they release (OpenID Connect Core §5.4)."""

from __future__ import annotations

from typing import Any

from app.models import User

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
}

# Plain words shown on the consent page.
SCOPE_DESCRIPTIONS: dict[str, str] = {
    "openid": "Sign you in and know who you are",
    "profile": "Your name, picture and other profile details",
    "email": "Your e-mail address",
    "address": "Your postal address",
    "phone": "Your phone number",
    "offline_access": "Stay connected when you are not using it",
}

OIDC_SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access")
IDENTITY_SCOPES = frozenset(OIDC_SCOPES)
ALL_CLAIMS = ("sub", *[c for claims in SCOPE_CLAIMS.values() for c in claims])


def user_claims(user: User, scopes: set[str] | list[str]) -> dict[str, Any]:
    """The claims of ``user`` released by ``scopes``; absent values are left out."""
    out: dict[str, Any] = {"sub": user.id}
    for scope in scopes:
        for claim in SCOPE_CLAIMS.get(scope, ()):
            value = _claim_value(user, claim)
            if value is not None and value != "":
                out[claim] = value
    return out


def _claim_value(user: User, claim: str) -> Any:
    if claim == "preferred_username":
        return user.username
    return getattr(user, claim, None)
