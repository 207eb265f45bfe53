"""Search results, the search query string, saved searches, and the search cursor."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import Field

from tracker.domain.models.base import Input, Output
from tracker.domain.models.issues import Issue
from tracker.domain.query import MAX_QUERY_LENGTH
from tracker.errors import BadRequest


class SearchQuery(Input):
    """GET /orgs/{org}/issues?q=...&highlight=true&limit=&cursor="""

    model_config = Input.model_config | {"strict": False, "extra": "ignore"}

    # longer than the parser allows, so an over-long query is its 400 with a position
    q: str = Field("", max_length=4 * MAX_QUERY_LENGTH, description="query language (SPEC §5)")
    highlight: bool = Field(False, description="add <mark>ed snippets to each result")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=1000)


class Highlight(Output):
    """HTML-escaped text with matches wrapped in <mark>…</mark>."""

    title: str
    description: str
    comments: str | None = None


class SearchHit(Issue):
    """An issue as the issue endpoints show it, plus snippets when asked for."""

    highlight: Highlight | None = None


class SavedSearchIn(Input):
    name: str = Field(min_length=1, max_length=100)
    query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)
    org: str | None = Field(
        None, min_length=1, max_length=40, description="org slug the search is meant for"
    )


class SavedSearchListQuery(Input):
    model_config = Input.model_config | {"strict": False, "extra": "ignore"}

    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=1000)


class SavedSearch(Output):
    id: str
    name: str
    query: str
    org: str | None
    created_at: str


def encode_search_cursor(state: dict[str, Any]) -> str:
    """Opaque to clients: url-safe base64 of compact JSON."""
    raw = json.dumps(state, separators=(",", ":"), allow_nan=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_search_cursor(text: str) -> dict[str, Any]:
    """The state `encode_search_cursor` wrote; anything else is a 400, never a 500."""
    try:
        state = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("invalid cursor") from None
    if not isinstance(state, dict):
        raise BadRequest("invalid cursor")
    return state
