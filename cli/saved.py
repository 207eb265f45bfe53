"""`rhythm search save|list|delete|run`: a person's saved searches (they belong to the
person acting, `--as` or `rhythm use --as`); `rhythm issue search` runs a query directly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli.context import DataDirOption, JsonOption, print_json, print_table, run_with_core
from cli.issue_args import validated
from cli.target import OrgOption, Target

if TYPE_CHECKING:
    from tracker.core import Core
    from tracker.domain.models.search import SavedSearch

app = typer.Typer(help="Saved searches: save, list, run, delete.", no_args_is_help=True)

AsOwner = typer.Option(
    None, "--as", help="Whose searches (required: here, `rhythm use --as` or $RHYTHM_AS)."
)


async def _all(core: Core, user_id: str) -> list[SavedSearch]:
    from tracker.services import saved_searches

    found: list[SavedSearch] = []
    cursor = None
    while True:
        page = await saved_searches.list_saved(core, user_id, 100, cursor)
        found += page.items
        if not (cursor := page.next_cursor):
            return found


async def _one(core: Core, user_id: str, name: str) -> SavedSearch:
    from tracker.errors import NotFound

    for item in await _all(core, user_id):
        if item.id == name or item.name.casefold() == name.strip().casefold():
            return item
    raise NotFound(f"no saved search '{name}'")


@app.command("save")
def save(
    name: str = typer.Argument(..., help="A name for the search."),
    query: str = typer.Argument(..., help="The query, e.g. 'assignee:me is:open'."),
    org: str | None = typer.Option(None, "--org", "-o", help="The organization it is meant for."),
    user: str | None = AsOwner,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Save a query under a name."""
    from tracker.domain.models.search import SavedSearchIn
    from tracker.services import saved_searches
    from tracker.services.acting import person

    who = Target(data_dir, None, None, user).someone("owns the search")
    data = validated(SavedSearchIn, {"name": name, "query": query, "org": org})

    async def work(core: Core) -> SavedSearch:
        return await saved_searches.create_saved(core, await person(core, who), data)

    made = run_with_core(data_dir, work)
    if as_json:
        print_json(made)
    else:
        typer.echo(f"saved search {made.name}")


@app.command("list")
def list_saved(
    user: str | None = AsOwner,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List your saved searches by name."""
    from tracker.services.acting import person

    who = Target(data_dir, None, None, user).someone("owns the searches")

    async def work(core: Core) -> list[SavedSearch]:
        return await _all(core, await person(core, who))

    found = run_with_core(data_dir, work)
    if as_json:
        print_json(found)
    else:
        print_table([s.model_dump() for s in found], ["name", "query", "created_at"])


@app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Name or id of the search."),
    user: str | None = AsOwner,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Delete a saved search."""
    from tracker.services import saved_searches
    from tracker.services.acting import person

    who = Target(data_dir, None, None, user).someone("owns the search")

    async def work(core: Core) -> None:
        user_id = await person(core, who)
        await saved_searches.delete_saved(core, user_id, (await _one(core, user_id, name)).id)

    run_with_core(data_dir, work)
    typer.echo(f"deleted saved search {name}")


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Name or id of the search."),
    org: str | None = OrgOption,
    limit: int = typer.Option(20, min=1, max=200, help="How many results."),
    user: str | None = AsOwner,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Run a saved search as its owner sees it."""
    from cli import search as search_cli
    from tracker.services.acting import person

    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.someone("owns the search")

    async def work(core: Core) -> Any:
        saved = await _one(core, await person(core, who), name)
        return await search_cli.find(core, org_slug, saved.query, None, who, limit, False)

    page = run_with_core(data_dir, work)
    if as_json:
        print_json(page)
    else:
        print_table([item.model_dump() for item in page.items], search_cli.COLUMNS)
