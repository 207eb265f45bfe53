"""Pure workflow rules: transitions, resolved_at, sprint states and the burndown replay."""

from __future__ import annotations

from datetime import date

import pytest

from tracker.domain.permissions import ProjectRole
from tracker.domain.workflow import (
    IssueState,
    IssueStep,
    burndown,
    check_completable,
    check_dates,
    check_order,
    check_rules,
    check_startable,
    check_transition,
    normalise_when,
    resolved_at_after,
    sprint_days,
)
from tracker.errors import Conflict, Forbidden, ValidationFailed

RULES = {("open", "doing"): "reporter", ("doing", "done"): "developer"}


@pytest.mark.parametrize(
    ("move", "role", "expected"),
    [
        (("open", "doing"), ProjectRole.REPORTER, None),
        (("open", "doing"), ProjectRole.VIEWER, Forbidden),
        (("doing", "done"), ProjectRole.REPORTER, Forbidden),
        (("doing", "done"), ProjectRole.DEVELOPER, None),
        (("doing", "done"), ProjectRole.ADMIN, None),
        (("open", "done"), ProjectRole.ADMIN, Conflict),  # not listed: no role helps
        (("done", "done"), ProjectRole.VIEWER, None),  # staying in a column is no move
    ],
)
def test_check_transition_rule_then_role(
    move: tuple[str, str], role: ProjectRole, expected: type[Exception] | None
) -> None:
    if expected is None:
        check_transition(RULES, *move, role)
    else:
        with pytest.raises(expected):
            check_transition(RULES, *move, role)


def test_no_rules_allow_every_move() -> None:
    check_transition({}, "open", "done", ProjectRole.VIEWER)


@pytest.mark.parametrize(
    ("old", "new", "before", "after"),
    [
        ("todo", "done", None, "NOW"),
        ("in_progress", "done", None, "NOW"),
        ("done", "done", "THEN", "THEN"),  # done -> done keeps the first resolution
        ("done", "todo", "THEN", None),
        ("todo", "in_progress", None, None),
    ],
)
def test_resolved_at_follows_done_category(
    old: str, new: str, before: str | None, after: str | None
) -> None:
    assert resolved_at_after(old, new, before, "NOW") == after


def test_check_rules_reports_every_bad_rule() -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_rules([("a", "b"), ("a", "a"), ("a", "x"), ("a", "b")], {"a", "b"})
    assert [e["field"] for e in caught.value.errors] == ["rules.1", "rules.2", "rules.3"]


def test_check_order_needs_a_permutation() -> None:
    check_order(["a", "b"], ["b", "a"])
    for bad in (["a"], ["a", "a"], ["a", "b", "c"]):
        with pytest.raises(ValidationFailed):
            check_order(["a", "b"], bad)


def test_sprint_state_machine() -> None:
    check_startable("planned", "2024-05-01", "2024-05-14")
    with pytest.raises(Conflict, match="already active"):
        check_startable("active", "2024-05-01", "2024-05-14")
    with pytest.raises(Conflict, match="completed sprint cannot be started"):
        check_startable("completed", "2024-05-01", "2024-05-14")
    with pytest.raises(ValidationFailed, match="ends_at: required"):
        check_startable("planned", "2024-05-01", None)
    check_completable("active")
    with pytest.raises(Conflict, match="has not been started"):
        check_completable("planned")
    with pytest.raises(Conflict, match="already completed"):
        check_completable("completed")


def test_dates_normalise_and_order() -> None:
    assert normalise_when("2024-05-01") == "2024-05-01"
    assert normalise_when("2024-05-01T10:00:00+02:00") == "2024-05-01T08:00:00.000Z"
    with pytest.raises(ValueError):
        normalise_when("next tuesday")
    with pytest.raises(ValidationFailed, match="must not be before"):
        check_dates("2024-05-02", "2024-05-01")
    assert sprint_days("2024-05-30", "2024-06-02T23:00:00.000Z") == [
        date(2024, 5, 30), date(2024, 5, 31), date(2024, 6, 1), date(2024, 6, 2),
    ]  # fmt: skip


# A sprint S from May 1 to May 5, viewed at noon on May 4. resolved_at "R" = done.
S = "S"
NOW = "2024-05-04T12:00:00.000Z"
PRESENT = {
    "A": IssueState(True, S, "R", 60, False),  # finished on May 2
    "B": IssueState(True, S, None, 45, False),  # re-estimated 30 -> 45 on May 3
    "C": IssueState(True, None, None, 10, False),  # taken out of the sprint on May 2
    "D": IssueState(True, S, "R", 20, False),  # added May 1, finished May 3
    "E": IssueState(True, S, None, 5, True),  # deleted on May 4
}
STEPS = [
    IssueStep(1, "2024-04-30T10:00:00.000Z", "A", "created"),
    IssueStep(2, "2024-04-30T10:00:00.000Z", "B", "created"),
    IssueStep(3, "2024-04-30T10:00:00.000Z", "C", "created"),
    IssueStep(4, "2024-04-30T11:00:00.000Z", "E", "created"),
    IssueStep(5, "2024-05-01T12:00:00.000Z", "D", "created"),
    IssueStep(6, "2024-05-02T10:00:00.000Z", "C", "sprint_id", S),
    IssueStep(7, "2024-05-02T15:00:00.000Z", "A", "resolved_at", None),
    IssueStep(8, "2024-05-03T09:00:00.000Z", "B", "estimate", 30),
    IssueStep(9, "2024-05-03T18:00:00.000Z", "D", "resolved_at", None),
    IssueStep(10, "2024-05-04T08:00:00.000Z", "E", "deleted"),
]
DAYS = sprint_days("2024-05-01", "2024-05-05")


def _series(points: list) -> list[tuple[int | None, int | None, int | None]]:
    return [(p.remaining_issues, p.remaining_estimate, p.scope_issues) for p in points]


def test_burndown_matches_the_hand_computation() -> None:
    points = burndown(S, DAYS, PRESENT, STEPS, until=NOW)
    assert _series(points) == [
        (5, 125, 5),  # May 1: A B C D E all open: 60+30+10+20+5
        (3, 55, 4),  # May 2: A done, C left: B 30 + D 20 + E 5
        (2, 50, 4),  # May 3: D done, B now 45: B 45 + E 5
        (1, 45, 3),  # May 4 (so far): E deleted
        (None, None, None),  # May 5 has not begun
    ]


def test_burndown_of_a_completed_sprint_ignores_the_completion_batch() -> None:
    """Completion (seq 11) moved B out; the last point still counts B as unfinished."""
    present = {**PRESENT, "B": IssueState(True, None, None, 45, False)}
    steps = [*STEPS, IssueStep(12, NOW, "B", "sprint_id", S)]
    points = burndown(S, DAYS, present, steps, until=NOW, cap_seq=11)
    assert _series(points)[3] == (1, 45, 3)
    assert _series(points)[4] == (None, None, None)


def test_burndown_with_nothing_logged_is_the_present() -> None:
    points = burndown(S, DAYS[:1], {"X": IssueState(True, S, None, None, False)}, [], until=NOW)
    assert _series(points) == [(1, 0, 1)]
