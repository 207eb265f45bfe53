"""Shared CLI test helpers: `rhythm ... --data-dir <tmp>` through typer's CliRunner."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app

CHEAP_ARGON = {"RHYTHM_ARGON2_MEMORY_KIB": "8192", "RHYTHM_ARGON2_TIME_COST": "1"}
ANN = "ann@example.com"
PASSWORD_INPUT = "long enough pw\nlong enough pw\n"
#: A user ann who owns org `acme` with project WEB.
ACME_SETUP: list[tuple[str, ...]] = [
    ("user", "create", ANN),
    ("org", "create", "Acme", "--slug", "acme", "--as", ANN),
    ("project", "create", "acme", "WEB", "Website", "--as", ANN),
]

Rhythm = Callable[..., Any]


def cli_on(data_dir: Path, setup: Iterable[tuple[str, ...]] = ()) -> Rhythm:
    """A `run(*args, input=None)` bound to `data_dir`, after running each `setup` command."""
    runner = CliRunner()

    env = {
        **CHEAP_ARGON, "RHYTHM_CLI_CONTEXT": str(data_dir.parent / "cli-context.json"),
        "RHYTHM_ORG": None, "RHYTHM_PROJECT": None, "RHYTHM_AS": None, "COLUMNS": "250",
    }  # fmt: skip

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, [*args, "--data-dir", str(data_dir)], input=input, env=env)

    run.data_dir = data_dir  # type: ignore[attr-defined]
    for args in setup:
        result = run(*args, input=PASSWORD_INPUT)
        assert result.exit_code == 0, result.output
    return run


def items(stdout: str) -> list[Any]:
    """The items of a list command's `--json` (the API's page envelope, every page read)."""
    page = json.loads(stdout)
    assert page["next_cursor"] is None
    return list(page["items"])


def tenant_rows(rhythm: Rhythm, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the (single) tenant database under the CLI's data dir."""
    (db,) = Path(rhythm.data_dir).glob("*/tracker.db")  # type: ignore[attr-defined]
    with sqlite3.connect(db) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
