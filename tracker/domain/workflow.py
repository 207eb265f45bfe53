"""Workflow rules that need no I/O: stages, transition rules, sprint states, burndown math."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from tracker.domain.bounds import date_in_range, moment_in_range
from tracker.domain.permissions import ProjectRole
from tracker.errors import Conflict, Forbidden, ValidationFailed

StageCategory = Literal["todo", "in_progress", "done"]

#: Every new project starts with these stages (SPEC §6), in this order.
DEFAULT_STAGES: tuple[tuple[str, StageCategory], ...] = (
    ("Open", "todo"),
    ("In Progress", "in_progress"),
    ("Resolved", "done"),
    ("Closed", "done"),
)

#: A board this wide is no longer a board; also bounds the reorder body.
MAX_STAGES = 50
#: A sprint longer than this is a typo (burndown has one point per day).
MAX_SPRINT_DAYS = 366

Rules = Mapping[tuple[str, str], str]  # (from_stage_id, to_stage_id) -> minimum role


def is_done(category: str) -> bool:
    """`is:closed` and `resolved_at` follow the stage category, never the stage name."""
    return category == "done"


def resolved_at_after(
    old_category: str, new_category: str, resolved_at: str | None, now: str
) -> str | None:
    """Entering a done stage sets resolved_at, leaving one clears it, else it is kept."""
    if is_done(new_category) and not is_done(old_category):
        return now
    if not is_done(new_category):
        return None
    return resolved_at


def check_transition(rules: Rules, from_stage: str, to_stage: str, role: ProjectRole) -> None:
    """A project without rules allows every move; with rules only listed moves (409),
    each for its minimum role and above (403). Staying in a column is not a move."""
    if not rules or from_stage == to_stage:
        return
    min_role = rules.get((from_stage, to_stage))
    if min_role is None:
        raise Conflict("the workflow does not allow moving an issue between these stages")
    if role.rank < ProjectRole(min_role).rank:
        raise Forbidden(f"this move needs the project role '{min_role}' or higher")


def check_rules(rules: Iterable[tuple[str, str]], stage_ids: set[str]) -> None:
    """Every rule names two different stages of the project, each pair at most once."""
    errors: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for index, pair in enumerate(rules):
        where = f"rules.{index}"
        if pair[0] not in stage_ids or pair[1] not in stage_ids:
            errors.append((where, "names a stage that is not in this project"))
        elif pair[0] == pair[1]:
            errors.append((where, "a rule needs two different stages"))
        elif pair in seen:
            errors.append((where, "duplicate rule"))
        seen.add(pair)
    if errors:
        raise ValidationFailed(errors)


def check_order(current: Sequence[str], order: Sequence[str]) -> None:
    """A reorder must list every stage of the project exactly once."""
    if len(order) != len(set(order)):
        raise ValidationFailed([("order", "lists a stage more than once")])
    if set(order) != set(current):
        raise ValidationFailed([("order", "must list every stage of the project exactly once")])


def check_startable(state: str, starts_at: str | None, ends_at: str | None) -> None:
    """planned -> active only; a sprint without both dates has nothing to burn down."""
    if state == "active":
        raise Conflict("the sprint is already active")
    if state == "completed":
        raise Conflict("a completed sprint cannot be started again")
    missing = [
        (name, "required to start a sprint")
        for name, value in (("starts_at", starts_at), ("ends_at", ends_at))
        if value is None
    ]
    if missing:
        raise ValidationFailed(missing)


def check_completable(state: str) -> None:
    """active -> completed only."""
    if state == "planned":
        raise Conflict("the sprint has not been started; only an active sprint can be completed")
    if state == "completed":
        raise Conflict("the sprint is already completed")


def check_dates(starts_at: str | None, ends_at: str | None) -> None:
    if starts_at is None or ends_at is None:
        return
    first, last = day_of(starts_at), day_of(ends_at)
    if last < first:
        raise ValidationFailed([("ends_at", "must not be before starts_at")])
    if (last - first).days >= MAX_SPRINT_DAYS:
        raise ValidationFailed([("ends_at", f"a sprint lasts at most {MAX_SPRINT_DAYS} days")])


def normalise_when(text: str) -> str:
    """Sprint dates: a plain date stays `YYYY-MM-DD`; a moment becomes UTC `...Z`."""
    text = text.strip()
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
        moment = None if day else datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("expected an ISO 8601 date or date-time") from None
    if day is not None:
        return date_in_range(day).isoformat()
    assert moment is not None
    moment = moment_in_range(moment)  # checks the year first: -14:00 cannot overflow
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def day_of(when: str) -> date:
    """The UTC calendar day of a normalised sprint date or moment."""
    return date.fromisoformat(when[:10])


def sprint_days(starts_at: str, ends_at: str) -> list[date]:
    first, last = day_of(starts_at), day_of(ends_at)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def day_end(day: date) -> str:
    """The first instant after `day` (UTC), as stored timestamps spell it."""
    return datetime.combine(day + timedelta(days=1), time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- burndown: replay the change log backwards from the present --------------------


@dataclass(frozen=True)
class IssueState:
    """What the burndown needs of one issue at one moment."""

    exists: bool
    sprint_id: str | None
    resolved_at: str | None  # set exactly while the issue sits in a done stage
    estimate: int | None
    deleted: bool


@dataclass(frozen=True)
class IssueStep:
    """One logged change of an issue, undone by restoring `old` (`kind` names the field;
    `created`, `deleted` and `restored` undo existence and soft deletion)."""

    seq: int
    at: str
    issue_id: str
    kind: str
    old: Any = None


@dataclass(frozen=True)
class BurndownPoint:
    day: date
    remaining_issues: int | None
    remaining_estimate: int | None
    scope_issues: int | None


def _undo(state: IssueState, step: IssueStep) -> IssueState:
    if step.kind == "created":
        return replace(state, exists=False)
    if step.kind == "deleted":
        return replace(state, deleted=False)
    if step.kind == "restored":
        return replace(state, deleted=True)
    if step.kind in ("sprint_id", "resolved_at", "estimate"):
        return replace(state, **{step.kind: step.old})
    return state


def _tally(states: Mapping[str, IssueState], sprint_id: str) -> tuple[int, int, int]:
    scope = remaining = estimate = 0
    for state in states.values():
        if not state.exists or state.deleted or state.sprint_id != sprint_id:
            continue
        scope += 1
        if state.resolved_at is None:
            remaining += 1
            estimate += state.estimate or 0
    return remaining, estimate, scope


def burndown(
    sprint_id: str,
    days: Sequence[date],
    current: Mapping[str, IssueState],
    steps: Sequence[IssueStep],
    *,
    until: str,
    cap_seq: int | None = None,
) -> list[BurndownPoint]:
    """Remaining (unresolved) issues and estimate in the sprint at the end of each day.

    Done-ness is read from resolved_at, which is set exactly while an issue is in
    a done stage, so renaming or deleting stages later cannot change the past.
    The present state is rewound change by change (newest first): a day's point
    is the state with every change at or after its end undone. `until` is the
    moment tracking stopped (now, or completion); days starting after it have no
    point. `cap_seq` undoes everything from that change on (the completion batch
    moves leftovers out; the last point must show them as unfinished).
    """
    states = dict(current)
    pending = sorted(steps, key=lambda s: s.seq, reverse=True)
    position = 0
    while position < len(pending) and cap_seq is not None and pending[position].seq >= cap_seq:
        step = pending[position]
        states[step.issue_id] = _undo(states[step.issue_id], step)
        position += 1
    points: list[BurndownPoint] = []
    for day in sorted(days, reverse=True):
        end = day_end(day)
        if day_end(day - timedelta(days=1)) > until:
            points.append(BurndownPoint(day, None, None, None))
            continue
        while position < len(pending) and pending[position].at >= end:
            step = pending[position]
            states[step.issue_id] = _undo(states[step.issue_id], step)
            position += 1
        remaining, estimate, scope = _tally(states, sprint_id)
        points.append(BurndownPoint(day, remaining, estimate, scope))
    points.reverse()
    return points
