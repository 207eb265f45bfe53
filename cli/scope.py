"""`rhythm scope [add|remove] KEY…`: which projects the active replica holds.

`rhythm scope` lists them; `add` copies a project in, `remove` purges it (a
project with changes waiting to be pushed is refused unless `--drop-pending`,
which keeps their text in `rhythm sync --rejected`). Both sync at once
(docs/offline.md, "Scope").
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from cli import offline
from cli.context import EXIT_USER, JsonOption, fail

app = typer.Typer(
    help="Which projects the active replica holds: list, add, remove.",
    invoke_without_command=True,
)


@app.callback()
def scope(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List the projects this replica holds (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    from tracker.replica import scope as scopes

    path = offline.replica_path(None)
    if path is None:
        fail("no replica: run `rhythm clone ORG[/PROJECT]` (or set RHYTHM_REPLICA)")
    replica = offline.open_replica(path)
    try:
        wanted = scopes.current(replica)
        projects = offline.guarded(lambda: scopes.held(replica))
    finally:
        replica.close()
    if as_json:
        body = {"scope": wanted, "projects": [{k: p[k] for k in ("key", "name", "issues")}
                                              for p in projects]}  # fmt: skip
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    said = "every project you can read" if wanted == scopes.EVERY else ", ".join(wanted)
    typer.echo(f"scope: {said}")
    for project in projects:
        typer.echo(f"{project['key']}\t{project['issues']} issues\t{project['name']}")


@app.command("add")
def add(
    keys: list[str] = typer.Argument(..., help="Project keys to copy into this replica."),
    as_json: bool = JsonOption,
) -> None:
    """Copy more projects into the active replica (syncs now)."""
    _change(keys, [], False, as_json)


@app.command("remove")
def remove(
    keys: list[str] = typer.Argument(..., help="Project keys to purge from this replica."),
    drop_pending: bool = typer.Option(
        False,
        "--drop-pending",
        help="Their unpushed changes go to `rhythm sync --rejected` (text kept), not refused.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Purge projects from the active replica (syncs now)."""
    _change([], keys, drop_pending, as_json)


def _change(add: list[str], remove: list[str], drop_pending: bool, as_json: bool) -> None:
    from tracker.replica import scope as scopes
    from tracker.replica import words
    from tracker.replica.client import Credentials, SyncClient
    from tracker.replica.errors import SyncError

    path = offline.replica_path(None)
    if path is None:
        fail("no replica: run `rhythm clone ORG[/PROJECT]` (or set RHYTHM_REPLICA)")
    replica = offline.open_replica(path)
    try:
        credentials = Credentials.load(replica.url)
        if credentials is None:
            fail(f"not logged in to {replica.url}: run `rhythm login {replica.url}`")

        async def work() -> Any:
            async with SyncClient(credentials, replica.org) as client:
                return await scopes.change(replica, client, add, remove, drop_pending)

        try:
            done = offline.run_async_raw(work)
        except SyncError as error:
            fail(_words(error), EXIT_USER)
    finally:
        replica.close()
    if as_json:
        body = {"before": done.before, "after": done.after, "dropped": done.dropped,
                "sync": words.as_json(done.report) if done.report else None}  # fmt: skip
        sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")
        return
    for m in done.dropped:
        typer.echo(f"moved to `rhythm sync --rejected`: {m['label'] or m['name']}")
    if done.after == done.before:
        typer.echo("scope unchanged (" + ("every project you can read" if done.after == ["*"]
                                          else ", ".join(done.after)) + ")")  # fmt: skip
    else:
        typer.echo(f"scope: {', '.join(done.after)}")
    for line in words.lines(done.report) if done.report else []:
        typer.echo(line)


def _words(error: Any) -> str:
    """A 422 names the keys the server refused; anything else as sync says it."""
    if error.status == 422:
        found = [e.get("message") for e in error.problem.get("errors") or [] if e.get("message")]
        return "the server refused the scope: " + ("; ".join(found) or str(error.problem))
    return str(error.words())
