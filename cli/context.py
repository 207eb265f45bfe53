"""How CLI commands reach the core: open it locally on a data directory, run, close.

Errors and exit codes live here, in one place (documented in docs/cli.md):
a RhythmError becomes one line on stderr and the exit code of its kind.

Only the commands that bring a data directory into being (`user create`,
`org create`, `migrate`, `serve`) may create one (`create=True`); every other
command refuses a path that is not already a Rhythm data directory and
creates nothing there.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from tracker.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    RhythmError,
    ServiceUnavailable,
    TooManyRequests,
)

if TYPE_CHECKING:
    from tracker.core import Core
    from tracker.settings import Settings

T = TypeVar("T")

#: Exit codes (docs/cli.md). 2 is typer's usage error.
EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_CONFLICT, EXIT_BUSY, EXIT_INTERNAL = range(7)
EXIT_INTERRUPTED = 130

DataDirOption = typer.Option(
    None, "--data-dir", "-d", help="Data directory (default: $RHYTHM_DATA_DIR or ./tenants)."
)
JsonOption = typer.Option(False, "--json", help="Print the API's JSON instead of a table.")
QuietOption = typer.Option(False, "--quiet", "-q", help="Print only ids or keys, one a line.")


def exit_code_of(error: RhythmError) -> int:
    """The documented exit code of an error kind."""
    if isinstance(error, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, Conflict | PreconditionFailed):
        return EXIT_CONFLICT
    if isinstance(error, ServiceUnavailable | TooManyRequests):
        return EXIT_BUSY
    return EXIT_USER


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    from tracker.settings import Settings

    try:
        return Settings.from_env(data_dir=data_dir, **overrides)
    except Exception as exc:  # pydantic or JSON errors in the environment/config
        fail("invalid configuration: " + " ".join(str(exc).split()))


def fail(message: str, code: int = EXIT_USER) -> NoReturn:
    """One line on stderr, then the exit code."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def must_exist(settings: Settings) -> None:
    """Refuse (without creating anything) a path that is not a Rhythm data directory."""
    path = settings.data_dir
    hint = "pass --data-dir or set RHYTHM_DATA_DIR"
    if not path.exists():
        fail(f"no data directory at {path} ({hint}; `rhythm user create` starts one)")
    if not path.is_dir():
        fail(f"{path} is not a directory ({hint})")
    if not settings.system_db_path.is_file():
        if (path / "tracker.db").is_file():
            fail(f"{path} is an organization's folder, not a data directory; use its parent")
        fail(f"{path} is not a Rhythm data directory (no _system.db; {hint})")


def run_with_core(
    data_dir: Path | None, work: Callable[[Core], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the core on the data directory (locking it), run `work`, close cleanly.

    `create=False` (the default) refuses a missing or foreign directory first. With no
    data directory named and a replica active, a read runs on the replica's view
    (cli/offline.py; anything else is refused there).
    """
    if data_dir is None and not create and not os.environ.get("RHYTHM_DATA_DIR"):
        data_dir = _replica_view()
    settings = load_settings(data_dir)
    if not create:
        must_exist(settings)
    from tracker.core import open_core

    async def main() -> T:
        async with open_core(settings, background=False) as core:
            return await work(core)

    try:
        return asyncio.run(main())
    except RhythmError as error:
        fail(error.detail, exit_code_of(error))
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if os.environ.get("RHYTHM_TRACEBACK"):
            raise
        fail(f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)


def _replica_view() -> Path | None:
    from tracker.replica.paths import active_replica

    if active_replica() is None:
        return None
    from typer._click.globals import get_current_context

    from cli.offline import view_for

    context = get_current_context(silent=True)
    names: list[str] = []
    while context is not None and context.parent is not None:  # the root is the program
        names.insert(0, context.info_name or "")
        context = context.parent
    return view_for(None, " ".join(names))


def print_json(value: Any) -> None:
    """The API's JSON shape: a model as its route returns it; a whole list (every page
    read) in the list routes' envelope, `{"items": [...], "next_cursor": null}`."""
    import json

    from pydantic import BaseModel

    if isinstance(value, list):
        items = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        value = {"items": items, "next_cursor": None}
    if isinstance(value, BaseModel):
        sys.stdout.write(value.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_ids(values: list[str]) -> None:
    """`--quiet`: one id or key a line, nothing else."""
    for value in values:
        sys.stdout.write(f"{value}\n")


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    """A box table on a terminal, tab-separated lines when piped (cli/render.py, which the
    fast read path shares). Cell text is shown literally, never read as rich markup. A
    terminal that cannot show box characters gets rich's ASCII table."""
    from cli import render

    if not sys.stdout.isatty() or render.boxes_fit():
        sys.stdout.write("".join(f"{line}\n" for line in render.table_lines(rows, columns, title)))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title) if title else None)
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*(escape("" if row.get(c) is None else str(row.get(c))) for c in columns))
    Console().print(table)
