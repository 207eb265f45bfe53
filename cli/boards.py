"""`rhythm board` and `rhythm sprint list|create|start|complete` on a data directory.

Operator rights, or `--as EMAIL` with that person's roles (see cli/orgs.py),
recorded as the actor in the change log (origin `cli`). A sprint is named by its
id or by its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.context import DataDirOption, JsonOption, print_json, print_table, run_with_core
from cli.issue_args import validated
from cli.people import named, names_of
from cli.target import AsOption, OrgOption, ProjectOption, Target
from tracker.core import Core
from tracker.domain.changes import Origin
from tracker.domain.models.workflow import (
    Board,
    BoardQuery,
    Burndown,
    Sprint,
    SprintComplete,
    SprintIn,
    SprintPatch,
    SprintQuery,
)
from tracker.domain.permissions import Permission
from tracker.services import boards, sprints
from tracker.services.acting import act_as

sprint_app = typer.Typer(
    help="Plan, update, start and complete sprints; burndown.", no_args_is_help=True
)

SPRINT_COLUMNS = ["name", "state", "starts_at", "ends_at", "goal", "id"]
CARD_WIDTH = 40


def _columns_table(board: Board) -> tuple[list[dict[str, Any]], list[str]]:
    """One table column per stage, one row per rank position: the board as people see it."""
    headers = [f"{c.stage.name} ({c.count})" for c in board.columns]
    depth = max((len(c.items) for c in board.columns), default=0)
    rows = []
    for position in range(depth):
        row = {}
        for header, column in zip(headers, board.columns, strict=True):
            if position < len(column.items):
                card = column.items[position]
                row[header] = f"{card.key} {card.title}"[:CARD_WIDTH]
        rows.append(row)
    return rows, headers


def board(
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    sprint: str | None = typer.Option(None, "--sprint", "-s", help="A sprint's board instead."),
    limit: int = typer.Option(20, min=1, max=200, help="Cards per column."),
    swimlanes: bool = typer.Option(
        False, "--swimlanes", help="One board per assignee (unassigned last)."
    ),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the Kanban board (or a sprint's board): columns in order, cards by rank."""
    t = Target(data_dir, org, project, user)
    org, project, user = t.org, t.project, t.who
    found, names = run_with_core(
        data_dir, lambda core: _board(core, org, project, sprint, limit, user)
    )
    if as_json:
        print_json(found)
        return
    title = f"{project.upper()} board" + (f" - {sprint}" if sprint else "")
    if not swimlanes:
        print_table(*_columns_table(found), title=title)
        return
    lanes = sorted({a for c in found.columns for card in c.items for a in card.assignees},
                   key=lambda a: named(names, a))  # fmt: skip
    for lane in [*lanes, None]:
        board = Board(columns=[
            column.model_copy(update={"items": [
                card for card in column.items
                if (lane in card.assignees if lane else not card.assignees)
            ]})
            for column in found.columns
        ])  # fmt: skip
        if any(column.items for column in board.columns):
            print_table(
                *_columns_table(board), title=f"{title} · {named(names, lane) or 'unassigned'}"
            )


@sprint_app.command("list")
def list_sprints(
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    state: str | None = typer.Option(None, help="planned|active|completed"),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List the project's sprints in creation order."""
    t = Target(data_dir, org, project, user)
    org, project, user = t.org, t.project, t.who
    found = run_with_core(data_dir, lambda core: _list_sprints(core, org, project, state, user))
    if as_json:
        print_json(found)
    else:
        print_table([s.model_dump() for s in found], SPRINT_COLUMNS)


def _said(sprint: Sprint, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(sprint)
    else:
        typer.echo(f"{verb} sprint {sprint.name} ({sprint.id}): {sprint.state}")


@sprint_app.command("create")
def create(
    name: str = typer.Argument(..., help="Sprint name."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    goal: str | None = typer.Option(None, help="What the sprint is for."),
    starts: str | None = typer.Option(None, "--starts", help="Start date, YYYY-MM-DD."),
    ends: str | None = typer.Option(None, "--ends", help="End date, YYYY-MM-DD."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Plan a sprint."""
    t = Target(data_dir, org, project, user)
    org, project, user = t.org, t.project, t.who
    data = {"name": name, "goal": goal or "", "starts_at": starts, "ends_at": ends}
    made = run_with_core(data_dir, lambda core: _create_sprint(core, org, project, data, user))
    _said(made, "created", as_json)


@sprint_app.command("start")
def start(
    sprint: str = typer.Argument(..., help="Sprint id or name."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Start a planned sprint (it needs both dates; one active sprint per project)."""
    t = Target(data_dir, org, project, user)
    org, project, user = t.org, t.project, t.who
    started = run_with_core(data_dir, lambda core: _start_sprint(core, org, project, sprint, user))
    _said(started, "started", as_json)


@sprint_app.command("complete")
def complete(
    sprint: str = typer.Argument(..., help="Sprint id or name."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    move_to: str = typer.Option(
        "backlog", "--move-to", help="Where unfinished issues go: backlog, or a sprint."
    ),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Complete the active sprint; unfinished issues go to the backlog or another sprint."""
    t = Target(data_dir, org, project, user)
    org, project, user = t.org, t.project, t.who
    done = run_with_core(
        data_dir,
        lambda core: _complete_sprint(core, org, project, sprint, move_to, user),
    )
    _said(done, "completed", as_json)


@sprint_app.command("board")
def sprint_board(
    sprint: str = typer.Argument(..., help="Sprint id or name."),
    limit: int = typer.Option(20, min=1, max=200, help="Cards per column."),
    swimlanes: bool = typer.Option(
        False, "--swimlanes", help="One board per assignee (unassigned last)."
    ),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """A sprint's board (the same as `rhythm board --sprint SPRINT`)."""
    board(org, project, sprint, limit, swimlanes, user, data_dir, as_json)


@sprint_app.command("update")
def update(
    sprint: str = typer.Argument(..., help="Sprint id or name."),
    name: str | None = typer.Option(None, help="New name."),
    goal: str | None = typer.Option(None, help="New goal."),
    starts: str | None = typer.Option(None, "--starts", help="Start date YYYY-MM-DD (`none`)."),
    ends: str | None = typer.Option(None, "--ends", help="End date YYYY-MM-DD (`none`)."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Rename a sprint, change its goal or set its dates (a sprint needs both to start)."""
    t = Target(data_dir, org, project, user)
    org, project, user = t.org, t.project, t.who
    data: dict[str, Any] = {k: v for k, v in (("name", name), ("goal", goal)) if v is not None}
    for field, value in (("starts_at", starts), ("ends_at", ends)):
        if value is not None:
            data[field] = None if value.lower() == "none" else value
    done = run_with_core(
        data_dir, lambda core: _update_sprint(core, org, project, sprint, data, user)
    )
    _said(done, "updated", as_json)


@sprint_app.command("burndown")
def burndown(
    sprint: str = typer.Argument(..., help="Sprint id or name."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """A sprint's burndown: remaining issues and estimate per day, from the change log."""
    t = Target(data_dir, org, project, user)
    org, project, user = t.org, t.project, t.who
    found = run_with_core(data_dir, lambda core: _burndown(core, org, project, sprint, user))
    if as_json:
        print_json(found)
    else:
        print_table(
            [d.model_dump() for d in found.days],
            ["date", "remaining_issues", "remaining_estimate", "scope_issues"],
        )


async def _update_sprint(
    core: Core, org: str, project: str, ref: str, data: dict[str, Any], user: str | None
) -> Sprint:
    access, actor = await act_as(
        core, org, project, user, Origin.CLI, permission=Permission.SPRINT_EDIT
    )
    patch = validated(SprintPatch, data)
    sprint_id = await sprints.sprint_ref(core, access, ref)
    return await sprints.update_sprint(core, access, sprint_id, patch, actor)


async def _burndown(core: Core, org: str, project: str, ref: str, user: str | None) -> Burndown:
    access, _ = await act_as(
        core, org, project, user, Origin.CLI, permission=Permission.PROJECT_READ
    )
    return await sprints.sprint_burndown(core, access, await sprints.sprint_ref(core, access, ref))


async def _board(
    core: Core, org: str, project: str, sprint: str | None, limit: int, user: str | None
) -> tuple[Board, dict[str, str]]:
    """The project board, or a sprint's (by id or name), and the names of its people."""
    access, _ = await act_as(
        core, org, project, user, Origin.CLI, permission=Permission.PROJECT_READ
    )
    query = BoardQuery(limit=limit)
    if sprint is None:
        found = await boards.project_board(core, access, query)
    else:
        sprint_id = await sprints.sprint_ref(core, access, sprint)
        found = await boards.sprint_board(core, access, sprint_id, query)
    people = {a for column in found.columns for card in column.items for a in card.assignees}
    return found, await names_of(core, people)


async def _list_sprints(
    core: Core, org: str, project: str, state: str | None, user: str | None
) -> list[Sprint]:
    access, _ = await act_as(
        core, org, project, user, Origin.CLI, permission=Permission.PROJECT_READ
    )
    query = SprintQuery(state=state, limit=200)
    page = await sprints.list_sprints(core, access, query)
    items = list(page.items)
    while page.next_cursor:
        page = await sprints.list_sprints(
            core, access, query.model_copy(update={"cursor": page.next_cursor})
        )
        items += page.items
    return items


async def _create_sprint(
    core: Core, org: str, project: str, data: dict[str, Any], user: str | None
) -> Sprint:
    access, actor = await act_as(
        core, org, project, user, Origin.CLI, permission=Permission.SPRINT_EDIT
    )
    return await sprints.create_sprint(core, access, validated(SprintIn, data), actor)


async def _start_sprint(core: Core, org: str, project: str, ref: str, user: str | None) -> Sprint:
    access, actor = await act_as(
        core, org, project, user, Origin.CLI, permission=Permission.SPRINT_RUN
    )
    return await sprints.start_sprint(
        core, access, await sprints.sprint_ref(core, access, ref), actor
    )


async def _complete_sprint(
    core: Core, org: str, project: str, ref: str, move_to: str, user: str | None
) -> Sprint:
    """`--move-to` takes `backlog` or another sprint's id or name."""
    access, actor = await act_as(
        core, org, project, user, Origin.CLI, permission=Permission.SPRINT_RUN
    )
    sprint_id = await sprints.sprint_ref(core, access, ref)
    target = (
        move_to if move_to == sprints.BACKLOG else await sprints.sprint_ref(core, access, move_to)
    )
    return await sprints.complete_sprint(
        core, access, sprint_id, SprintComplete(move_to=target), actor
    )
