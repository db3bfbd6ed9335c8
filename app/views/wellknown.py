"""Discovery and JWKS. ``app.fastpath`` serves GET/HEAD before routing; these routes give
other methods a proper 405 and keep the documents reachable without the fast path."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from app.discovery import metadata
from app.extensions import provider

bp = Blueprint("wellknown", __name__)


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery() -> Response:
    return Response(json.dumps(metadata(provider())), mimetype="application/json")


@bp.get("/jwks.json")
def jwks() -> Response:
    return Response(provider().keys.jwks_bytes, mimetype="application/json")
