"""Request parameters: single-valued (RFC 6749 §3.1, §3.2), required, scope parsing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from app.oauth.errors import InvalidRequest, InvalidScope

MAX_PARAM_LENGTH = 4096
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_CHARS = {chr(c) for c in range(0x21, 0x7F)} - {'"', "\\"}


class Params:
    """Parameters of one request; each may appear at most once."""

    def __init__(self, items: Mapping[str, list[str]]):
        self._items = items

    @classmethod
    def from_multidict(cls, multidict) -> Params:
        """Build from any object with ``keys()`` and ``getlist()`` (werkzeug's MultiDict)."""
        return cls({k: multidict.getlist(k) for k in multidict})

    @classmethod
    def from_urlencoded(cls, body: bytes) -> Params:
        """Parse an application/x-www-form-urlencoded body (RFC 6749 Appendix B)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("The request body is not valid UTF-8.") from None
        items: dict[str, list[str]] = {}
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=100)
        except ValueError:
            raise InvalidRequest("Too many parameters.") from None
        for name, value in pairs:
            items.setdefault(name, []).append(value)
        return cls(items)

    def get(self, name: str) -> str | None:
        values = self._items.get(name) or []
        if len(values) > 1:
            raise InvalidRequest(f"The {name} parameter must not be repeated.")
        if not values or values[0] == "":
            return None  # RFC 6749 §3.1: empty parameters are treated as omitted
        value = values[0]
        if len(value) > MAX_PARAM_LENGTH or "\x00" in value:
            raise InvalidRequest(f"The {name} parameter is malformed.")
        return value

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise InvalidRequest(f"The {name} parameter is required.")
        return value

    def names(self) -> Iterable[str]:
        return self._items.keys()


def parse_scope(raw: str | None) -> list[str]:
    """Space-delimited scope tokens in request order, duplicates removed."""
    if not raw:
        return []
    scopes: list[str] = []
    for token in raw.split(" "):
        if not token:
            continue
        if not set(token) <= _SCOPE_CHARS:
            raise InvalidScope("The scope contains invalid characters.")
        if token not in scopes:
            scopes.append(token)
    return scopes
