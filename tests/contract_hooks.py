"""Schemathesis hooks for the contract test (SCHEMATHESIS_HOOKS=tests.contract_hooks)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def json_lines(ctx: Any, value: Any) -> bytes:
    """The import body: a generated array becomes one JSON value per line."""
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()
