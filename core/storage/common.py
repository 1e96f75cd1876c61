"""What the storage modules share: the errors a route maps to 4xx, keyset cursors and a WHERE builder.

Pages use keyset pagination with an opaque cursor, so a page is stable while new rows arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any


class CursorError(ValueError):
    """The cursor is not one this API issued (or was issued by another listing)."""


class Conflict(Exception):
    """A state conflict a user can resolve (409): the message says what to do."""


class NotActionable(Exception):
    """The request is well-formed but the target is in the wrong state for it (422)."""


def encode_cursor(kind: str, *values: object) -> str:
    raw = json.dumps([kind, *[v.isoformat() if isinstance(v, datetime) else v for v in values]],
                     separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# How many values each listing's cursor carries (its keyset); anything else is not a cursor we issued.
_CURSOR_VALUES = {"cases": 2, "reviews": 2, "appeals": 2, "audit": 1}


def decode_cursor(kind: str, cursor: str) -> list[Any]:
    """The keyset values of a cursor from ``encode_cursor(kind, ...)``; ``CursorError`` (a 422 naming the
    cursor) for anything else: not base64/JSON, another listing's, the wrong number or type of values."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as err:
        raise CursorError("cursor is not valid: pass back the next_cursor of a previous page unchanged") from err
    if not isinstance(data, list) or not data or data[0] != kind:
        raise CursorError(f"cursor is not valid for this listing ({kind}): pass back a next_cursor from it")
    values = data[1:]
    expected = _CURSOR_VALUES.get(kind, len(values))
    if len(values) != expected or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise CursorError("cursor is not valid: pass back the next_cursor of a previous page unchanged")
    return values


def cursor_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise CursorError("cursor is not valid: pass back the next_cursor of a previous page unchanged")
    try:
        return datetime.fromisoformat(value)
    except ValueError as err:
        raise CursorError("cursor is not valid: pass back the next_cursor of a previous page unchanged") from err


class Where:
    """Builds a parameterised WHERE clause."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, template: str, *values: Any) -> None:
        """``template`` uses ``{}`` for each value, replaced by the next ``$n``."""
        marks = []
        for v in values:
            self.args.append(v)
            marks.append(f"${len(self.args)}")
        self.clauses.append(template.format(*marks))

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.clauses)) if self.clauses else ""

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"
