"""Rendering errors as RFC 9457 problem details (application/problem+json)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tracker.errors import (
    PROBLEM_BASE,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RhythmError,
    ServiceUnavailable,
    TooManyRequests,
)

PROBLEM_TYPE = "application/problem+json"


def problem_response(error: RhythmError, request_id: str | None) -> web.Response:
    body = error.to_problem()
    body["request_id"] = request_id
    headers: dict[str, str] = {}
    if isinstance(error, TooManyRequests | ServiceUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, MethodNotAllowed) and "allow" in error.extra:
        headers["Allow"] = ", ".join(error.extra.pop("allow"))
        body.pop("allow", None)
    return web.Response(
        body=json.dumps(body, ensure_ascii=False).encode(),
        status=error.status,
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def from_http_exception(exc: web.HTTPException) -> RhythmError:
    """Translate aiohttp's own errors (unknown route, wrong method, body too large)."""
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such route")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(
            f"{exc.method} is not allowed here", allow=sorted(exc.allowed_methods)
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("request body too large")
    return HttpStatusError(exc.status, exc.reason)


class HttpStatusError(RhythmError):
    """Any other status aiohttp raised itself, passed through with its own reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status  # type: ignore[misc]  # a ClassVar, set per instance: aiohttp's own status
        self.code = f"http-{status}"  # type: ignore[misc]  # a ClassVar, set per instance: aiohttp's own status
        self.title = reason  # type: ignore[misc]  # a ClassVar, set per instance: aiohttp's own status


def problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "example": PROBLEM_BASE + "validation"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "request_id": {"type": ["string", "null"]},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
            "position": {"type": "integer"},
        },
    }
