"""`rhythm project ...`: projects on a data directory (operator rights, or `--as` with that
person's roles; see cli/orgs.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from cli.context import DataDirOption, JsonOption, fail, print_json, print_table, run_with_core
from cli.orgs import validation_message
from cli.target import AsOption, Target
from tracker.core import Core
from tracker.domain.changes import Origin
from tracker.domain.models.orgs import Project, ProjectIn, ProjectListQuery, Visibility
from tracker.domain.permissions import Permission
from tracker.services import projects
from tracker.services.acting import act_as, as_member

app = typer.Typer(help="Manage projects.", no_args_is_help=True)


@app.command("create")
def create(
    org: str = typer.Argument(..., help="Organization slug."),
    key: str = typer.Argument(
        ..., help="Project key: 2-10 letters/digits, starting with a letter."
    ),
    name: str = typer.Argument(..., help="Display name."),
    description: str = typer.Option("", help="Description (markdown)."),
    private: bool = typer.Option(False, "--private", help="Visible to explicit members only."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a project with the default workflow."""
    user = Target(data_dir, None, None, user).who
    visibility: Visibility = "private" if private else "org"
    try:
        data = ProjectIn(name=name, key=key, description=description, visibility=visibility)
    except ValidationError as exc:
        fail(validation_message(exc))
    project = run_with_core(data_dir, lambda core: _create(core, org, data, user))
    if as_json:
        print_json(project)
    else:
        typer.echo(f"created project {project.key} in {org} ({project.id})")


@app.command("list")
def list_projects(
    org: str = typer.Argument(..., help="Organization slug."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List an organization's projects (all, or those `--as` can see)."""
    user = Target(data_dir, None, None, user).who
    found = run_with_core(data_dir, lambda core: _list(core, org, user))
    rows = [project.model_dump() for project in found]
    if as_json:
        print_json(found)
    else:
        print_table(rows, ["key", "name", "visibility", "role", "id"])


async def _create(core: Core, org: str, data: ProjectIn, user: str | None) -> Project:
    access, actor = await act_as(
        core, org, None, user, Origin.CLI, permission=Permission.PROJECT_CREATE
    )
    return await projects.create_project(core, access, data, actor)


async def _list(core: Core, org: str, user: str | None) -> list[Project]:
    """Every project of an org (operator view), or those the `--as` user can see."""
    access, _ = await act_as(core, org, None, user, Origin.CLI)
    if user is not None:
        access = await as_member(core, access)
    items: list[Project] = []
    query = ProjectListQuery(limit=200)
    while True:
        page = await projects.list_projects(core, access, query)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        query = ProjectListQuery(limit=200, cursor=page.next_cursor)
