"""Migrations: ordered, recorded, transactional; fresh equals step by step."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tracker.errors import SchemaTooNew
from tracker.storage.migrate import apply_migrations, latest_version, load_migrations


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def schema_of(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name != 'sqlite_sequence' ORDER BY name"
    ).fetchall()


@pytest.mark.parametrize("kind", ["system", "tenant"])
def test_fresh_equals_migrated_step_by_step(tmp_path: Path, kind: str) -> None:
    fresh = connect(tmp_path / "fresh.db")
    assert apply_migrations(fresh, kind) == latest_version(kind)
    stepped_path = tmp_path / "stepped.db"
    for target in range(1, latest_version(kind) + 1):
        conn = connect(stepped_path)  # reopen between steps, as an upgrade would
        assert apply_migrations(conn, kind, target=target) == 1
        conn.close()
    stepped = connect(stepped_path)
    assert schema_of(stepped) == schema_of(fresh)
    versions = [r[0] for r in stepped.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, latest_version(kind) + 1))
    assert stepped.execute("PRAGMA user_version").fetchone()[0] == latest_version(kind)


def test_applying_twice_is_a_no_op(tmp_path: Path) -> None:
    conn = connect(tmp_path / "t.db")
    apply_migrations(conn, "tenant")
    assert apply_migrations(conn, "tenant") == 0


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "t.db")
    apply_migrations(conn, "tenant")
    conn.execute(f"PRAGMA user_version = {latest_version('tenant') + 1}")
    with pytest.raises(SchemaTooNew):
        apply_migrations(conn, "tenant")


def test_migrations_are_numbered_without_gaps() -> None:
    for kind in ("system", "tenant"):
        versions = [m.version for m in load_migrations(kind)]
        assert versions == list(range(1, len(versions) + 1))


def test_every_connection_pragma_is_set(tmp_path: Path) -> None:
    import asyncio

    from tracker.storage.database import Database

    async def check() -> dict[str, object]:
        db = await Database.open(tmp_path / "p.db", create=True, synchronous="NORMAL")
        values = await db.read(
            lambda c: {
                name: c.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys", "trusted_schema",
                             "busy_timeout", "journal_size_limit")
            }
        )  # fmt: skip
        await db.close()
        return values

    values = asyncio.run(check())
    assert values == {
        "journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "trusted_schema": 0,
        "busy_timeout": 5000, "journal_size_limit": 64 * 1024 * 1024,
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["system", "tenant"])
def test_is_current_only_at_the_latest_version(tmp_path: Path, kind: str) -> None:
    """The open path's one-statement check: True at the latest version only; behind or
    ahead both send the caller to `apply_migrations` (which migrates, or refuses)."""
    from tracker.storage.migrate import is_current

    conn = connect(tmp_path / "v.db")
    apply_migrations(conn, kind, target=latest_version(kind) - 1)
    assert not is_current(conn, kind)
    apply_migrations(conn, kind)
    assert is_current(conn, kind)
    conn.execute(f"PRAGMA user_version = {latest_version(kind) + 1}")
    assert not is_current(conn, kind)
    assert not conn.in_transaction
