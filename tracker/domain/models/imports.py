"""One line of an import file (`rhythm issue import`): an issue with its comments.

The format is JSON Lines, one issue per line, so a million issues stream from
disk without being held in memory and an error names its line:

    {"title": "Login fails", "status": "Open", "reporter": "ann@example.com",
     "created_at": "2024-03-01T09:30:00Z", "comments": [{"body": "Seen on iOS"}]}

People are named by email (an export from another tracker knows emails, not
Rhythm's ids); times are ISO 8601 with an offset (or UTC when they have none)
and are stored as Rhythm's UTC text. The same limits as the API apply.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from tracker.domain.bounds import moment_in_range
from tracker.domain.emails import check_email, normalize_email
from tracker.domain.ids import iso, parse_iso
from tracker.domain.models.base import Input, Output
from tracker.domain.models.comments import MAX_COMMENT_CHARS
from tracker.domain.models.issues import DESCRIPTION_MAX_BYTES, TITLE_MAX, IssueType, Priority

MAX_IMPORT_COMMENTS = 10_000  # per issue


#: Marks the time fields in the OpenAPI, so fuzzers and tests/test_http_bounds.py know them.
_MOMENT: dict[str, Any] = {"format": "date-time"}


def _timestamp(value: str | None) -> str | None:
    """Any ISO 8601 time, as Rhythm stores times (UTC, milliseconds, Z)."""
    if value is None:
        return None
    try:
        moment = parse_iso(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 time, e.g. 2024-03-01T09:30:00Z") from None
    return iso(moment_in_range(moment))


def _unicode(value: str | None) -> str | None:
    """Refuse lone surrogates (`"\\ud800"` in JSON): they cannot be stored as UTF-8."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
    return value


class ImportedComment(Input):
    body: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS)
    author: str | None = Field(None, min_length=3, max_length=320, description="email")
    created_at: str | None = Field(
        None, max_length=64, description="default: the issue's", json_schema_extra=_MOMENT
    )

    @field_validator("body", "author")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        if value is not None and info.field_name == "author":
            check_email(value)
        return _unicode(value)

    @field_validator("created_at")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return _timestamp(value)


class ImportedIssue(Input):
    """An issue as another tracker exported it; only `title` is required."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = ""
    type: IssueType = "task"
    priority: Priority = "normal"
    status: str | None = Field(None, min_length=1, max_length=100, description="stage name")
    reporter: str | None = Field(None, min_length=3, max_length=320, description="email")
    created_at: str | None = Field(
        None, max_length=64, description="default: now", json_schema_extra=_MOMENT
    )
    updated_at: str | None = Field(
        None, max_length=64, description="default: created_at", json_schema_extra=_MOMENT
    )
    resolved_at: str | None = Field(
        None, max_length=64, description="done stages only", json_schema_extra=_MOMENT
    )
    comments: list[ImportedComment] = Field(default_factory=list, max_length=MAX_IMPORT_COMMENTS)

    @field_validator("title", "status", "reporter")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        if value is not None and info.field_name == "reporter":
            check_email(value)
        return _unicode(value.strip() if value is not None else None)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        _unicode(value)
        if len(value.encode("utf-8")) > DESCRIPTION_MAX_BYTES:
            raise ValueError(f"must be at most {DESCRIPTION_MAX_BYTES} bytes of UTF-8")
        return value

    @field_validator("created_at", "updated_at", "resolved_at")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return _timestamp(value)

    def emails(self) -> set[str]:
        """Every person this record names, as tracker.domain.emails normalizes them."""
        named = {self.reporter} | {c.author for c in self.comments}
        return {normalize_email(email) for email in named if email is not None}


class ImportReport(Output):
    """What an import did."""

    issues: int
    comments: int
    seconds: float


class ImportQuery(Input):
    """?unknown_users_as_me=true: people without an account become the importing user."""

    model_config = Input.model_config | {"strict": False}

    unknown_users_as_me: bool = False
