"""`rhythm issue search "QUERY"`: the query language on a data directory, no server needed."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.context import DataDirOption, JsonOption, print_json, print_table, run_with_core
from tracker.services import search as search_service

COLUMNS = ["key", "status", "priority", "type", "title", "updated_at"]


def search(
    query: str = typer.Argument(..., help="Query, e.g. 'login crash is:open sort:updated'."),
    org: str = typer.Option(..., "--org", "-o", help="Organization slug."),
    project: str | None = typer.Option(
        None, "--project", "-p", help="Project key (default: every project)."
    ),
    user: str | None = typer.Option(
        None, "--as", help="Search as this user (email): their projects, and `me`."
    ),
    limit: int = typer.Option(20, min=1, max=200, help="How many results."),
    highlight: bool = typer.Option(False, "--highlight", help="Include <mark>ed snippets."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Search issues with the query language (SPEC §5), best matches first."""
    page = run_with_core(
        data_dir,
        lambda core: search_service.search_as(
            core, org, query, project_key=project, email=user, limit=limit, highlight=highlight
        ),
    )
    if as_json:
        print_json(page)
        return
    print_table([item.model_dump() for item in page.items], COLUMNS)
    if page.next_cursor:
        typer.echo(f"(more than {limit}; raise --limit or narrow the query)")
