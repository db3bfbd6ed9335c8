"""The one place every sign-in, consent and token event passes through.

Today each event is a structured log line on the ``tessera.audit`` logger; the
audit trail (an append-only table) will be written from here too.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

log = logging.getLogger("tessera.audit")


def record(event: str, **fields: Any) -> None:
    """Record an auditable event. Never pass secrets, codes or tokens."""
    if log.isEnabledFor(logging.INFO):
        log.info(json.dumps({"event": event, "at": int(time.time()), **fields}, default=str))
