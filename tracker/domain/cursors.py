"""Opaque pagination cursors: the last item's sort key, as URL-safe base64 JSON.

One pair of functions serves every list. A cursor that this server did not
hand out (garbled base64, not JSON, wrong arity or types) is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tracker.errors import BadRequest


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), allow_nan=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, shape: tuple[type, ...]) -> list[Any]:
    """The sort key inside a cursor, checked against the types the list expects."""
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("invalid cursor") from None
    if (
        not isinstance(values, list)
        or len(values) != len(shape)
        or not all(type(v) is t for v, t in zip(values, shape, strict=True))
    ):
        raise BadRequest("invalid cursor")
    return values
