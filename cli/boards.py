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
from cli.orgs import AsOption
from tracker.domain.models.workflow import Board, Sprint
from tracker.services import boards, sprints

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
    found = run_with_core(
        data_dir, lambda core: boards.board_as(core, org, project, sprint, limit, user)
    )
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
    found = run_with_core(
        data_dir, lambda core: sprints.list_sprints_as(core, org, project, state, user)
    )
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
    made = run_with_core(
        data_dir, lambda core: sprints.create_sprint_as(core, org, project, data, user)
    )
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
    started = run_with_core(
        data_dir, lambda core: sprints.start_sprint_as(core, org, project, sprint, user)
    )
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
        lambda core: sprints.complete_sprint_as(core, org, project, sprint, move_to, user),
    )
    _said(done, "completed", as_json)
