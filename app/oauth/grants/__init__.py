"""Token endpoint grants: one module per grant type, each with ``GRANT_TYPE`` and ``handle``.

``handle(ctx, client, params) -> dict`` returns the JSON token response or raises an
OAuthError. A new grant is a new module added to ``GRANTS``.
"""

from __future__ import annotations

from app.oauth.grants import authorization_code, client_credentials, refresh_token
from app.oauth.grants.common import GrantContext, GrantHandler

GRANTS: dict[str, GrantHandler] = {
    module.GRANT_TYPE: module.handle
    for module in (authorization_code, refresh_token, client_credentials)
}

__all__ = ["GRANTS", "GrantContext", "GrantHandler"]
