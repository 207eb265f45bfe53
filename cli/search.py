"""`rhythm issue search "QUERY"`: the query language on a data directory, no server needed."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.context import DataDirOption, JsonOption, print_json, print_table, run_with_core
from cli.target import OrgOption, Target
from tracker.core import Core
from tracker.domain.changes import Origin
from tracker.domain.models.base import Page
from tracker.domain.models.search import SearchHit
from tracker.domain.permissions import Permission
from tracker.services import search as search_service
from tracker.services.acting import act_as, as_member

COLUMNS = ["key", "status", "priority", "type", "title", "updated_at"]


def search(
    query: str = typer.Argument(..., help="Query, e.g. 'login crash is:open sort:updated'."),
    org: str | None = OrgOption,
    project: str | None = typer.Option(
        None, "--project", "-p", help="Project key (default: every project; not `rhythm use`)."
    ),
    user: str | None = typer.Option(
        None, "--as", help="Search as this person (email): their projects, and `me`."
    ),
    limit: int = typer.Option(20, min=1, max=200, help="How many results."),
    highlight: bool = typer.Option(False, "--highlight", help="Include <mark>ed snippets."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Search issues with the query language, best matches first."""
    target = Target(data_dir, org, project, user)
    org, user = target.org, target.who
    page = run_with_core(
        data_dir,
        lambda core: find(core, org, query, project, user, limit, highlight),
    )
    if as_json:
        print_json(page)
        return
    print_table([item.model_dump() for item in page.items], COLUMNS)
    if page.next_cursor:
        typer.echo(f"(more than {limit}; raise --limit or narrow the query)")


async def find(
    core: Core,
    org: str,
    q: str,
    project: str | None,
    user: str | None,
    limit: int,
    highlight: bool,
) -> Page[SearchHit]:
    """The operator sees every project; `--as EMAIL` sees what that user sees."""
    access, _ = await act_as(core, org, None, user, Origin.CLI)
    if user is not None:
        access = await as_member(core, access)
    if project is None:
        return await search_service.search_org_issues(
            core, access, q, limit=limit, cursor=None, highlight=highlight
        )
    if user is None:
        paccess, _ = await act_as(core, org, project, None, Origin.CLI)
    else:
        paccess, _ = await act_as(
            core, org, project, user, Origin.CLI, permission=Permission.PROJECT_READ
        )
    return await search_service.search_project_issues(
        core, paccess, q, limit=limit, cursor=None, highlight=highlight
    )
