"""`rhythm board` and `rhythm sprint list|create|start|complete` on a data directory.

Operator rights, as the other commands (see cli/orgs.py); `--as EMAIL` names
the actor recorded in the change log (origin `cli`). A sprint is named by its
id or by its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.context import DataDirOption, JsonOption, print_json, print_table, run_with_core
from cli.issue_args import validated
from cli.orgs import AsOption
from tracker.core import Core
from tracker.domain.changes import Origin
from tracker.domain.models.workflow import (
    Board,
    BoardQuery,
    Sprint,
    SprintComplete,
    SprintIn,
    SprintQuery,
)
from tracker.services import boards, sprints
from tracker.services.acting import act_as

sprint_app = typer.Typer(help="Plan, start and complete sprints.", no_args_is_help=True)

OrgOption = typer.Option(..., "--org", "-o", help="Organization slug.")
ProjectOption = typer.Option(..., "--project", "-p", help="Project key, e.g. WEB.")
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
    org: str = OrgOption,
    project: str = ProjectOption,
    sprint: str | None = typer.Option(None, "--sprint", "-s", help="A sprint's board instead."),
    limit: int = typer.Option(20, min=1, max=200, help="Cards per column."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the Kanban board (or a sprint's board): columns in order, cards by rank."""
    found = run_with_core(data_dir, lambda core: _board(core, org, project, sprint, limit, user))
    if as_json:
        print_json(found)
        return
    rows, headers = _columns_table(found)
    print_table(
        rows, headers, title=f"{project.upper()} board" + (f" - {sprint}" if sprint else "")
    )


@sprint_app.command("list")
def list_sprints(
    org: str = OrgOption,
    project: str = ProjectOption,
    state: str | None = typer.Option(None, help="planned|active|completed"),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List the project's sprints in creation order."""
    found = run_with_core(data_dir, lambda core: _list_sprints(core, org, project, state, user))
    if as_json:
        print_json([s.model_dump() for s in found])
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
    org: str = OrgOption,
    project: str = ProjectOption,
    goal: str | None = typer.Option(None, help="What the sprint is for."),
    starts: str | None = typer.Option(None, "--starts", help="Start date, YYYY-MM-DD."),
    ends: str | None = typer.Option(None, "--ends", help="End date, YYYY-MM-DD."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Plan a sprint."""
    data = {"name": name, "goal": goal or "", "starts_at": starts, "ends_at": ends}
    made = run_with_core(data_dir, lambda core: _create_sprint(core, org, project, data, user))
    _said(made, "created", as_json)


@sprint_app.command("start")
def start(
    sprint: str = typer.Argument(..., help="Sprint id or name."),
    org: str = OrgOption,
    project: str = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Start a planned sprint (it needs both dates; one active sprint per project)."""
    started = run_with_core(data_dir, lambda core: _start_sprint(core, org, project, sprint, user))
    _said(started, "started", as_json)


@sprint_app.command("complete")
def complete(
    sprint: str = typer.Argument(..., help="Sprint id or name."),
    org: str = OrgOption,
    project: str = ProjectOption,
    move_to: str = typer.Option(
        "backlog", "--move-to", help="Where unfinished issues go: backlog, or a sprint."
    ),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Complete the active sprint; unfinished issues go to the backlog or another sprint."""
    done = run_with_core(
        data_dir,
        lambda core: _complete_sprint(core, org, project, sprint, move_to, user),
    )
    _said(done, "completed", as_json)


async def _board(
    core: Core, org: str, project: str, sprint: str | None, limit: int, user: str | None
) -> Board:
    """The project board, or a sprint's (by id or name)."""
    access, _ = await act_as(core, org, project, user, Origin.CLI)
    query = BoardQuery(limit=limit)
    if sprint is None:
        return await boards.project_board(core, access, query)
    return await boards.sprint_board(
        core, access, await sprints.sprint_ref(core, access, sprint), query
    )


async def _list_sprints(
    core: Core, org: str, project: str, state: str | None, user: str | None
) -> list[Sprint]:
    access, _ = await act_as(core, org, project, user, Origin.CLI)
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
    access, actor = await act_as(core, org, project, user, Origin.CLI)
    return await sprints.create_sprint(core, access, validated(SprintIn, data), actor)


async def _start_sprint(core: Core, org: str, project: str, ref: str, user: str | None) -> Sprint:
    access, actor = await act_as(core, org, project, user, Origin.CLI)
    return await sprints.start_sprint(
        core, access, await sprints.sprint_ref(core, access, ref), actor
    )


async def _complete_sprint(
    core: Core, org: str, project: str, ref: str, move_to: str, user: str | None
) -> Sprint:
    """`--move-to` takes `backlog` or another sprint's id or name."""
    access, actor = await act_as(core, org, project, user, Origin.CLI)
    sprint_id = await sprints.sprint_ref(core, access, ref)
    target = (
        move_to if move_to == sprints.BACKLOG else await sprints.sprint_ref(core, access, move_to)
    )
    return await sprints.complete_sprint(
        core, access, sprint_id, SprintComplete(move_to=target), actor
    )
