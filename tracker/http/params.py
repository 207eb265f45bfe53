"""Reading the request pieces many handlers share: the issue number, If-Match, ETag."""

from __future__ import annotations

from typing import Any

from tracker.domain.versions import etag_of
from tracker.errors import NotFound
from tracker.http.binding import Call

ISSUE_PATH = "/orgs/{org}/projects/{project}/issues/{n}"


def issue_number(call: Call[Any]) -> int:
    """The `{n}` of the URL; anything but a positive number names no issue (404)."""
    text = call.params["n"]
    if not text.isdigit() or len(text) > 15 or int(text) < 1:
        raise NotFound("issue not found")
    return int(text)


def if_match(call: Call[Any]) -> str | None:
    """The raw If-Match header; services compare it with `domain.versions.if_match_ok`."""
    return call.request.headers.get("If-Match")


def etag(version: int) -> dict[str, str]:
    return {"ETag": etag_of(version)}
