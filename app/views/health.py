"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy import text

from app.db import get_db
from app.extensions import provider
from app.web import json_response

bp = Blueprint("health", __name__)


@bp.get("/health/live")
def live() -> Response:
    return json_response({"status": "ok"})


@bp.get("/health/ready")
def ready() -> Response:
    checks: dict[str, str] = {}
    try:
        get_db().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means not ready
        checks["database"] = "unavailable"
    if provider().redis is not None:
        try:
            checks["redis"] = "ok" if provider().state.ping() else "unavailable"
        except Exception:  # noqa: BLE001
            checks["redis"] = "unavailable"
    checks["signing_key"] = "ok" if provider().keys.keys else "missing"
    healthy = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, 200 if healthy else 503
    )
