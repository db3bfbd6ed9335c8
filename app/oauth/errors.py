"""OAuth errors, one class per RFC error code, raised anywhere, rendered in one place.

``description`` is safe to show the client; ``detail`` is for the log only.
"""

from __future__ import annotations


class OAuthError(Exception):
    error = "server_error"
    status = 400
    description = "The request could not be processed."

    def __init__(self, description: str | None = None, *, detail: str | None = None):
        super().__init__(description or self.description)
        if description is not None:
            self.description = description
        self.detail = detail
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


# RFC 6749 §4.1.2.1 and §5.2
class InvalidRequest(OAuthError):
    error = "invalid_request"
    description = "The request is missing a parameter or is malformed."


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401
    description = "Client authentication failed."

    def __init__(self, description: str | None = None, *, detail: str | None = None):
        super().__init__(description, detail=detail)
        # A 401 carries a challenge (RFC 7235 §3.1); Basic is what every client can use.
        self.headers["WWW-Authenticate"] = 'Basic realm="tessera", charset="UTF-8"'


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    description = "The grant is invalid, expired, revoked or was issued to another client."


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    description = "The client is not allowed to use this grant or response type."


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    description = "The grant type is not supported."


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"
    description = "Only response_type=code is supported."


class InvalidScope(OAuthError):
    error = "invalid_scope"
    description = "The requested scope is invalid or unknown."


class AccessDenied(OAuthError):
    error = "access_denied"
    description = "The resource owner denied the request."


class ServerError(OAuthError):
    error = "server_error"
    status = 500
    description = "The server met an unexpected condition."


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 429
    description = "Too many requests; retry later."


# OpenID Connect Core §3.1.2.6
class LoginRequired(OAuthError):
    error = "login_required"
    description = "The user is not signed in."


class ConsentRequired(OAuthError):
    error = "consent_required"
    description = "The user has not consented to this client and scope."


class InteractionRequired(OAuthError):
    error = "interaction_required"
    description = "User interaction is required."


class RequestNotSupported(OAuthError):
    error = "request_not_supported"
    description = "Request objects are not supported."


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"
    description = "request_uri is not supported."


class RegistrationNotSupported(OAuthError):
    error = "registration_not_supported"
    description = "The registration parameter is not supported."


# RFC 6750 §3.1
class InvalidToken(OAuthError):
    error = "invalid_token"
    status = 401
    description = "The access token is invalid, expired or revoked."


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403
    description = "The access token lacks the required scope."


# RFC 7009 §2.2.1
class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"
    description = "Revocation of this token type is not supported."


# RFC 7591 §3.2.2
class InvalidRedirectUri(OAuthError):
    error = "invalid_redirect_uri"
    description = "A redirect URI is invalid."


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"
    description = "A client metadata value is invalid."


class UntrustedRedirect(OAuthError):
    """The client or redirect URI cannot be trusted: show a page, never redirect."""

    error = "invalid_request"
    description = "The client or redirect URI is not registered."


class NotFound(OAuthError):
    error = "invalid_request"
    status = 404
    description = "Not found."
