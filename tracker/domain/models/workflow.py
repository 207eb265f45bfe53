"""Stages, transition rules, sprints, boards, the backlog and burndown."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracker.domain.models.base import Input, IssueNumber, Output
from tracker.domain.workflow import MAX_STAGES, normalise_when

StageCategoryName = Literal["todo", "in_progress", "done"]
RoleName = Literal["viewer", "reporter", "developer", "admin"]
SprintStateName = Literal["planned", "active", "completed"]


class QueryModel(BaseModel):
    """Query strings arrive as text: lax types (so "50" is 50); unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")


# --- stages ---------------------------------------------------------------------------


class StageIn(Input):
    name: str = Field(min_length=1, max_length=100, pattern=r"\S")
    category: StageCategoryName
    position: int | None = Field(
        None, ge=0, le=MAX_STAGES, description="0-based column; default: last"
    )


class StagePatch(Input):
    name: str | None = Field(None, min_length=1, max_length=100, pattern=r"\S")
    category: StageCategoryName | None = None
    position: int | None = Field(None, ge=0, le=MAX_STAGES)


class StageOrder(Input):
    order: list[str] = Field(min_length=1, max_length=MAX_STAGES)


class StageDeleteQuery(QueryModel):
    move_to: str | None = Field(None, description="Stage that receives the issues of this one")


class Stage(Output):
    id: str
    name: str
    category: StageCategoryName
    position: int
    created_at: str
    updated_at: str


# --- transition rules -----------------------------------------------------------------


class TransitionRuleIn(Input):
    from_stage_id: str
    to_stage_id: str
    min_role: RoleName = "developer"


class TransitionsIn(Input):
    """The whole rule set; an empty list lifts every restriction."""

    rules: list[TransitionRuleIn] = Field(max_length=MAX_STAGES * MAX_STAGES)


class TransitionRule(Output):
    from_stage_id: str
    to_stage_id: str
    min_role: RoleName


class Transitions(Output):
    rules: list[TransitionRule]


# --- sprints --------------------------------------------------------------------------


#: Documented as date-time (a plain date is accepted too) so fuzzers and the bounds
#: test know these are dates (tests/test_http_bounds.py).
_MOMENT: dict[str, Any] = {"format": "date-time"}


def _when(value: str | None) -> str | None:
    return None if value is None else normalise_when(value)


class SprintIn(Input):
    name: str = Field(min_length=1, max_length=200)
    goal: str = Field("", max_length=10_000)
    starts_at: str | None = Field(None, max_length=40, description="ISO date or date-time",
                                  json_schema_extra=_MOMENT)  # fmt: skip
    ends_at: str | None = Field(None, max_length=40, description="ISO date or date-time",
                                json_schema_extra=_MOMENT)  # fmt: skip

    _dates = field_validator("starts_at", "ends_at")(_when)


class SprintPatch(Input):
    name: str | None = Field(None, min_length=1, max_length=200)
    goal: str | None = Field(None, max_length=10_000)
    starts_at: str | None = Field(None, max_length=40, json_schema_extra=_MOMENT)
    ends_at: str | None = Field(None, max_length=40, json_schema_extra=_MOMENT)

    _dates = field_validator("starts_at", "ends_at")(_when)


class SprintComplete(Input):
    move_to: str = Field("backlog", description='"backlog" or the id of a sprint')


class SprintQuery(QueryModel):
    state: SprintStateName | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=200)


class Sprint(Output):
    id: str
    name: str
    goal: str
    state: SprintStateName
    starts_at: str | None
    ends_at: str | None
    started_at: str | None
    completed_at: str | None
    created_at: str
    updated_at: str
    version: int


# --- boards and backlog ---------------------------------------------------------------


class Card(Output):
    """An issue as a board or backlog shows it: enough to draw, no more."""

    id: str
    key: str
    number: int
    title: str
    type: str
    priority: str
    stage_id: str
    assignees: list[str]
    estimate: int | None
    rank: str


class BoardColumn(Output):
    stage: Stage
    count: int
    items: list[Card]


class Board(Output):
    columns: list[BoardColumn]


class SprintBoardQuery(QueryModel):
    limit: int = Field(50, ge=1, le=200, description="Cards per column")


class BoardQuery(SprintBoardQuery):
    q: str | None = Field(None, max_length=2000, description="query language filter (search)")


class BacklogQuery(QueryModel):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=200)


class BacklogMove(Input):
    """Put issue `issue` right before or right after another backlog issue."""

    issue: IssueNumber
    before: IssueNumber | None = None
    after: IssueNumber | None = None


class BurndownDay(Output):
    date: str
    remaining_issues: int | None
    remaining_estimate: int | None
    scope_issues: int | None


class Burndown(Output):
    sprint_id: str
    days: list[BurndownDay]
