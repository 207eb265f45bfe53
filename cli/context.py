"""How CLI commands reach the core: open it locally on a data directory, run, close.

Error messages and exit codes live here, in one place: a RhythmError becomes a
one-line message on stderr and exit code 1 (2 for usage errors, typer's own).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from tracker.core import Core, open_core
from tracker.errors import RhythmError
from tracker.settings import Settings

T = TypeVar("T")

DataDirOption = typer.Option(
    None, "--data-dir", "-d", help="Data directory (default: $RHYTHM_DATA_DIR or ./tenants)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    try:
        return Settings.from_env(data_dir=data_dir, **overrides)
    except Exception as exc:  # pydantic or JSON errors in the environment/config
        fail(f"invalid configuration: {exc}")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_with_core(data_dir: Path | None, work: Callable[[Core], Awaitable[T]]) -> T:
    """Open the core on the data directory (locking it), run `work`, close cleanly."""
    settings = load_settings(data_dir)

    async def main() -> T:
        async with open_core(settings, background=False) as core:
            return await work(core)

    try:
        return asyncio.run(main())
    except RhythmError as error:
        return fail(error.detail)


def print_json(value: Any) -> None:
    import json

    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        sys.stdout.write(value.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console().print(table)
