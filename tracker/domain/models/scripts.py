"""Automation scripts (SPEC §8): bodies, the script, revisions, runs and previews.

Limits (decided here, documented in the README): a script's source is at most
64 KiB, its name 1..100 characters; a run keeps at most 200 log lines.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tracker.domain.models.base import Input, Output

MAX_SOURCE_CHARS = 65_536
ISSUE_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9]{1,9}-[0-9]{1,15}$"


class ScriptIn(Input):
    name: str = Field(min_length=1, max_length=100)
    source: str = Field(min_length=1, max_length=MAX_SOURCE_CHARS)
    description: str = Field("", max_length=2_000)
    enabled: bool = True


def _absent_not_null(schema: dict[str, Any]) -> None:
    """A PATCH field defaults to "absent", not to null: keep null out of the schema."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None:
            del prop["default"]


class ScriptPatch(Input):
    """Only the fields present change; a new `source` is a new revision."""

    model_config = Input.model_config | {"json_schema_extra": _absent_not_null}

    name: str = Field(None, min_length=1, max_length=100)  # type: ignore[assignment]
    source: str = Field(None, min_length=1, max_length=MAX_SOURCE_CHARS)  # type: ignore[assignment]
    description: str = Field(None, max_length=2_000)  # type: ignore[assignment]
    enabled: bool = Field(None)  # type: ignore[assignment]


class Trigger(Output):
    kind: Literal["event", "schedule", "manual"]
    event: str | None = None
    cron: str | None = None
    next_run_at: str | None = None


class Script(Output):
    id: str
    name: str
    description: str
    enabled: bool
    revision: int
    triggers: list[Trigger]
    created_at: str
    updated_at: str
    version: int


class ScriptDetail(Script):
    """GET …/scripts/{id}: the script with its current source."""

    source: str


class Revision(Output):
    revision: int
    source: str
    created_at: str
    author: str | None


class RunTrigger(Output):
    kind: Literal["event", "schedule", "manual"]
    event: str | None = None
    seq: int | None = None
    at: str | None = None
    by: str | None = None


class Run(Output):
    id: str
    script: str
    revision: int
    trigger: RunTrigger
    status: Literal["ok", "error", "timeout", "memory", "skipped"]
    started_at: str
    duration_ms: int
    logs: list[str]
    error: str | None
    changes: list[int]


class RunIn(Input):
    """POST …/scripts/{id}/run and /dry-run: the issue `ctx.issue` is set to, if any."""

    issue: str | None = Field(None, pattern=ISSUE_KEY_PATTERN)


class RunQuery(BaseModel):
    """`?wait=true` answers with the finished run (200) instead of 202."""

    model_config = ConfigDict(extra="forbid")

    wait: bool = False


class ManualRunAccepted(Output):
    id: str
    status: Literal["queued"]


class PreviewChange(Output):
    issue: str | None
    field: str | None
    old: Any = None
    new: Any = None
    by: str


class PreviewComment(Output):
    issue: str | None
    body: str
    by: str


class PreviewEmail(Output):
    """A `ctx.email` a script would send: checked (members only) but never sent."""

    to: list[str]
    subject: str
    body: str
    by: str
    sent: Literal[False] = False


class PreviewRun(Output):
    script: str
    status: str
    logs: list[str]
    error: str | None


class Preview(Output):
    changes: list[PreviewChange]
    comments: list[PreviewComment]
    runs: list[PreviewRun]
    would_fail: dict[str, Any] | None
    emails: list[PreviewEmail] = []
