"""Forward-only SQL migrations: numbered files, applied in order, one transaction each.

The files live in the repository's top-level `migrations/` and ship inside the
wheel as `tracker/_migrations` (pyproject.toml force-include); `migrations_dir`
is the one function that finds them in either layout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from tracker.domain.ids import now_iso
from tracker.errors import SchemaTooNew
from tracker.storage.search_index import backfill_cjk

Kind = Literal["system", "tenant"]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Path:
    """The folder holding system/ and tenant/ (wheel layout first, then the source tree)."""
    package_root = Path(__file__).resolve().parent.parent
    for candidate in (package_root / "_migrations", package_root.parent / "migrations"):
        if (candidate / "tenant").is_dir():
            return candidate
    raise FileNotFoundError("migrations folder not found; the installation is incomplete")


@cache
def load_migrations(kind: Kind) -> tuple[Migration, ...]:
    """All migrations of one kind, ordered, checked for gaps and duplicates."""
    found = []
    for path in sorted((migrations_dir() / kind).glob("*.sql")):
        number, _, rest = path.stem.partition("_")
        found.append(Migration(int(number), rest or path.stem, path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"{kind} migrations must be numbered 1..n without gaps")
    return tuple(found)


def latest_version(kind: Kind) -> int:
    return len(load_migrations(kind))


@cache
def current_check(kind: Kind) -> str:
    """A statement that succeeds exactly when the database is at the latest schema."""
    # json() of a non-JSON text fails: the statement errs exactly when the version differs.
    return (
        f"SELECT json(CASE user_version WHEN {latest_version(kind)} THEN '0' "
        "ELSE 'not the latest schema' END) FROM pragma_user_version"
    )


def is_current(conn: sqlite3.Connection, kind: Kind) -> bool:
    """Whether the database is at the latest schema of its kind, in one GIL round trip.

    The check on every tenant open (docs/tenants.md, seventh session): reading
    `PRAGMA user_version` through `execute` + `fetchone` gives the GIL up and takes it
    back nine times (prepare, bind, step, column reads, step, reset), each take-back
    queued behind the busy event loop; `executescript` runs one statement in one. The
    statement fails when the version is not the latest, and False then sends the
    caller to `apply_migrations`, which reads the version properly (and raises any real
    error of the file again, or SchemaTooNew).
    """
    try:
        conn.executescript(current_check(kind))
    except sqlite3.OperationalError:
        return False
    return True


def split_statements(sql: str) -> list[str]:
    """Split a script into statements with SQLite's own completeness test (handles triggers)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in current.splitlines()
    ):
        raise ValueError("migration ends with an incomplete statement")
    return statements


def apply_migrations(conn: sqlite3.Connection, kind: Kind, target: int | None = None) -> int:
    """Bring the database up to `target` (default: latest); returns how many were applied.

    Runs on the database's own thread. Each migration and its bookkeeping commit
    together; the version is re-read inside the write lock, so two openers of
    one new database cannot both apply a step.
    """
    migrations = load_migrations(kind)
    target = len(migrations) if target is None else target
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > len(migrations):
        raise SchemaTooNew(
            f"{kind} database is at schema {current}, this Rhythm knows {len(migrations)}; upgrade"
        )
    applied = 0
    for migration in migrations[current:target]:
        applied += _apply_one(conn, kind, migration)
    return applied


def _python_steps() -> dict[tuple[Kind, str], Callable[[sqlite3.Connection], None]]:
    """What SQL cannot do, run right after a migration's statements in its transaction;
    keyed by (kind, name), so renumbering a migration at a merge keeps its step."""
    return {("tenant", "cjk_search"): backfill_cjk}


def _apply_one(conn: sqlite3.Connection, kind: Kind, migration: Migration) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] >= migration.version:
            conn.execute("ROLLBACK")
            return 0
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for statement in split_statements(migration.sql):
            conn.execute(statement)
        after = _python_steps().get((kind, migration.name))
        if after is not None:
            after(conn)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, now_iso()),
        )
        conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        conn.execute("COMMIT")
        return 1
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
