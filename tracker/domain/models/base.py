"""Shared model bases and the list envelope."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


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
