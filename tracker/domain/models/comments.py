"""What an issue gathers over its life: comments, relations to other issues, logged time.

Limits (decided here, documented in the README):
- a comment body is 1..65,536 characters and not only whitespace; big enough
  for a pasted stack trace, small enough that one comment cannot bloat the
  search index the way a 100 KB description may;
- one time entry is 1..1,000,000 seconds (about 11.5 days), never zero or negative;
- `logged_at` defaults to now and may not lie more than a day in the future.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracker.domain.bounds import moment_in_range
from tracker.domain.models.base import Input, Output, Page

MAX_COMMENT_CHARS = 65_536
MAX_TIME_ENTRY_SECONDS = 1_000_000
MAX_TIME_DESCRIPTION_CHARS = 2_000
ISSUE_REF_PATTERN = r"^(?:[A-Za-z][A-Za-z0-9]{1,9}-)?[0-9]{1,15}$"  # WEB-42 or 42

RelationType = Literal[
    "blocks",
    "is_blocked_by",
    "duplicates",
    "is_duplicated_by",
    "clones",
    "is_cloned_by",
    "relates_to",
]

#: Each relation type and the type its mirror row gets on the other issue.
INVERSE: dict[str, str] = {
    "blocks": "is_blocked_by",
    "is_blocked_by": "blocks",
    "duplicates": "is_duplicated_by",
    "is_duplicated_by": "duplicates",
    "clones": "is_cloned_by",
    "is_cloned_by": "clones",
    "relates_to": "relates_to",
}


class SubListQuery(BaseModel):
    """`?limit=&cursor=` of the sub-resource lists (query strings are text, so not strict)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=512)


class CommentIn(Input):
    body: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a comment needs some text")
        return value


class CommentPatch(CommentIn):
    """Only the body of a comment can change."""


class Comment(Output):
    id: str
    issue_id: str
    author: str
    body: str
    created_at: str
    updated_at: str
    version: int


class RelationIn(Input):
    """`issue` is the other side: a number in this project (42 or "42") or a key (`API-7`)."""

    type: RelationType
    issue: (
        Annotated[int, Field(ge=1, le=10**15)]
        | Annotated[str, Field(pattern=ISSUE_REF_PATTERN, max_length=32)]
    )


class Relation(Output):
    """One side of a link, seen from the issue in the URL.

    `issue`, `issue_id` and `title` describe the *other* issue; the mirror row
    on the other issue shares `pair_id` and has the inverse `type`.
    """

    id: str
    pair_id: str
    type: RelationType
    issue: str
    issue_id: str
    title: str
    created_by: str | None
    created_at: str


class TimeEntryIn(Input):
    seconds_spent: int = Field(gt=0, le=MAX_TIME_ENTRY_SECONDS)
    description: str = Field("", max_length=MAX_TIME_DESCRIPTION_CHARS)
    logged_at: datetime | None = None

    @field_validator("logged_at")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        """In UTC, and refused before any arithmetic could overflow (tracker.domain.bounds)."""
        return None if value is None else moment_in_range(value)


class TimeEntry(Output):
    id: str
    issue_id: str
    user_id: str
    seconds_spent: int
    description: str
    logged_at: str
    created_at: str


class TimeEntryPage(Page[TimeEntry]):
    """A page of entries plus the issue's totals: `total_seconds` equals the issue's
    `time_spent`, `by_user` maps each user id to the seconds they logged."""

    total_seconds: int
    by_user: dict[str, int]
