"""Page copies on the owning connection (tracker/storage/page_copy.py), real files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tracker.storage.database import Database
from tracker.storage.page_copy import PageCopy


def make_db(path: Path, rows: int = 8_000) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)")
    fill(conn, rows)
    return conn


def fill(conn: sqlite3.Connection, rows: int) -> None:
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO t(v, pad) SELECT 0, randomblob(900) FROM n",
        (rows,),
    )


def content(path: Path) -> tuple[str, int, int]:
    with sqlite3.connect(path) as conn:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        total, count = conn.execute("SELECT sum(v), count(*) FROM t").fetchone()
    return str(ok), int(total), int(count)


def write_pair(conn: sqlite3.Connection, n: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t(v, pad) VALUES (?, randomblob(900))", (n,))
    conn.execute("UPDATE t SET v = v - ? WHERE id = ?", (n, 1 + n * 37 % 8_000))
    conn.execute("COMMIT")


def test_writes_between_batches_reach_the_copy_without_restarts(tmp_path: Path) -> None:
    conn = make_db(tmp_path / "src.db")
    copy = PageCopy(conn, tmp_path / "src.db", tmp_path / "copy.db")
    copy.open()
    steps = 0
    while not copy.step(16):
        steps += 1
        write_pair(conn, steps)  # each commit changes pages already copied, and new ones
    copy.finish()
    copy.release()
    assert steps > 50 and copy.restarts == 0
    source = conn.execute("SELECT sum(v), count(*) FROM t").fetchone()
    assert content(tmp_path / "copy.db") == ("ok", *source)
    assert source[1] == 8_000 + steps


def test_a_rollback_on_the_source_restarts_the_copy(tmp_path: Path) -> None:
    """Why Database undoes through a savepoint while it is copied (SQLite's behaviour)."""
    conn = make_db(tmp_path / "src.db")
    copy = PageCopy(conn, tmp_path / "src.db", tmp_path / "copy.db")
    copy.open()
    steps = 0
    while not copy.step(16):
        steps += 1
        if steps == 100:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t(v, pad) VALUES (5, randomblob(900))")
            conn.execute("ROLLBACK")
    copy.finish()
    copy.release()
    assert copy.restarts == 1
    assert content(tmp_path / "copy.db") == ("ok", 0, 8_000)


def test_abort_removes_the_unfinished_copy(tmp_path: Path) -> None:
    conn = make_db(tmp_path / "src.db")
    copy = PageCopy(conn, tmp_path / "src.db", tmp_path / "copy.db")
    copy.open()
    assert not copy.step(16)
    copy.abort()
    assert not (tmp_path / "copy.db").exists()
    write_pair(conn, 1)  # the source is untouched and writable
    conn.close()


async def test_undone_units_during_a_copy_do_not_restart_it(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "src.db", create=True)
    try:
        await db.write(lambda c: c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v, pad)"))
        await db.write(lambda c: fill(c, 8_000))
        copy = PageCopy.__new__(PageCopy)

        def start(conn: sqlite3.Connection) -> None:
            copy.__init__(conn, db.path, tmp_path / "copy.db")  # type: ignore[misc]
            copy.open()

        def big_preview(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE t SET v = v + 1")
            fill(conn, 25_000)

        def failing(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t(v, pad) VALUES (7, randomblob(900))")
            raise ValueError("refused after writing")

        db.copying += 1
        await db.side_job(start)
        steps, done = 0, False
        while not done and steps < 1_000:  # restarted every 40 steps, it would never end
            done = await db.side_job(lambda _: copy.step(16))
            steps += 1
            if not done and steps % 40 == 0:  # a preview and a failing unit: both undone
                await db.dry_run(lambda c: fill(c, 50))
                if steps == 40:  # more than the page cache: SQLite spills it to the WAL
                    await db.dry_run(big_preview)
                with pytest.raises(ValueError):
                    await db.write(failing)
                await db.write(lambda c: c.execute("INSERT INTO t(v) VALUES (0)"))
        await db.side_job(lambda _: copy.finish())
        copy.release()
        db.copying -= 1
        assert done and steps > 100 and copy.restarts == 0
        count = await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert content(tmp_path / "copy.db") == ("ok", 0, count)
        assert count == 8_000 + (steps - 1) // 40
    finally:
        await db.close()
