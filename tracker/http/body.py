"""Reading request bodies safely: size-capped, strict JSON, then a pydantic model.

aiohttp's `request.json()` turns invalid JSON, 100k-deep nesting and a
5000-digit integer into 500s, accepts NaN and duplicate keys, and a chunked
body read from `request.content` bypasses `client_max_size` (measured:
docs/reliability.md §3.3). This module closes each of those.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from tracker.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

M = TypeVar("M", bound=BaseModel)

MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 30


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The raw body, refusing more than `max_bytes` even without Content-Length."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise MalformedBody(f"{name} is not valid JSON")


class _TooManyDigits(int):
    """Stands in (as 0) for an integer of more than MAX_NUMBER_DIGITS digits, never
    converted (int() of thousands of digits is slow), until `_check_shape` finds it
    and answers 422 naming its field."""


def _parse_int(text: str) -> int:
    return _TooManyDigits(0) if len(text) > MAX_NUMBER_DIGITS else int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if len(text) > 64 or not math.isfinite(value):
        raise MalformedBody("number out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedBody(f"duplicate key '{key}'")
            seen.add(key)
    return result


def _check_shape(value: Any, depth: int = 0, path: str = "") -> None:
    """Depth limit, lone surrogates (which SQLite's UTF-8 encoder would reject later)
    and integers with too many digits (422 naming the field, like any out-of-range one)."""
    if depth > MAX_DEPTH:
        raise MalformedBody(f"JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, _TooManyDigits):
        field = path or "body"
        raise ValidationFailed(
            [(field, f"number too large (more than {MAX_NUMBER_DIGITS} digits)")]
        )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_shape(item, depth + 1, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_shape(item, depth + 1, f"{path}.{index}" if path else str(index))


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedBody("string contains a lone surrogate") from None


def parse_json(raw: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys, bounded numbers and depth."""
    if not raw.strip():
        raise MalformedBody("request body is empty; JSON expected")
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
            object_pairs_hook=_no_duplicates,
        )
    except UnicodeDecodeError:
        raise MalformedBody("request body is not UTF-8") from None
    except RecursionError:
        raise MalformedBody(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"invalid JSON: {exc.msg}", position=exc.pos) from None
    _check_shape(value)
    return value


def validate(model: type[M], value: Any) -> M:
    """Validate parsed JSON against a model, reporting every field error at once."""
    if not isinstance(value, dict):
        raise ValidationFailed([("body", "expected a JSON object")])
    try:
        return model.model_validate_json(json.dumps(value))
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, whole="body") from None


async def parse_model(request: web.Request, model: type[M], max_bytes: int) -> M:
    """The whole pipeline for a JSON body route."""
    content_type = request.content_type
    if content_type not in ("application/json", "") and not content_type.endswith("+json"):
        raise UnsupportedMediaType(f"expected application/json, got {content_type}")
    return validate(model, parse_json(await read_body(request, max_bytes)))
