"""Shared model bases and the list envelope."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from tracker.domain.bounds import MAX_INT, MAX_ISSUE_NUMBER

T = TypeVar("T")

# Bounded integers (tracker.domain.bounds): every integer a request carries has a
# minimum and a maximum, which the OpenAPI shows (so the contract fuzzer tries the
# values just past them) and tests/test_http_bounds.py enforces for every route.
#: Any integer a request may carry: |n| <= 2**53 - 1.
BoundedInt = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]
#: A count, size or offset: 0..2**53 - 1.
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_INT)]
#: An issue number in a request body: 1..10**15 - 1 (URLs and refs allow 15 digits).
IssueNumber = Annotated[int, Field(ge=1, le=MAX_ISSUE_NUMBER)]


class Input(BaseModel):
    """A request body: unknown fields are refused (no mass assignment), types are strict."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Output(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="ignore")


class Page(Output, Generic[T]):
    """Cursor pagination envelope of every list (SPEC §2)."""

    items: list[T]
    next_cursor: str | None = None
