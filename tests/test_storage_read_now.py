"""`Database.read_now`: a small read answered on the event loop only while the
connection's thread is idle; otherwise it queues behind what is in flight."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tracker.storage.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "t.db", create=True)
    await database.write(lambda c: c.execute("CREATE TABLE t (x INTEGER)"))
    await database.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    yield database
    await database.close()


def where(conn: sqlite3.Connection) -> tuple[str, int]:
    value = int(conn.execute("SELECT sum(x) FROM t").fetchone()[0])
    return threading.current_thread().name, value


async def settled(db: Database) -> None:
    for _ in range(500):
        if db.idle:
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the database thread never became idle")


async def test_idle_thread_read_runs_inline(db: Database) -> None:
    await settled(db)
    name, value = await db.read_now(where)
    assert name == threading.current_thread().name and value == 1


async def test_busy_thread_read_queues_behind_the_write(db: Database) -> None:
    """A write in flight: the read hops and sees the write's committed result."""
    started = threading.Event()

    def slow_write(conn: sqlite3.Connection) -> None:
        started.set()
        conn.execute("INSERT INTO t VALUES (10)")
        threading.Event().wait(0.05)

    write = asyncio.ensure_future(db.write(slow_write))
    await asyncio.sleep(0)
    await asyncio.to_thread(started.wait, 5)
    name, value = await db.read_now(where)
    await write
    assert name.startswith("db") and value == 11
    await settled(db)
    assert (await db.read_now(where))[0] == threading.current_thread().name  # idle again


async def test_a_cancelled_queued_read_leaves_the_thread_idle(db: Database) -> None:
    """A job cancelled before it started is counted as finished: reads go inline again."""
    gate = threading.Event()
    blocker = asyncio.ensure_future(db.read(lambda c: gate.wait(5)))
    queued = asyncio.ensure_future(db.read(where))
    await asyncio.sleep(0.01)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued  # its job is cancelled in the executor's queue, never started
    gate.set()
    await blocker
    await settled(db)
    assert (await db.read_now(where))[0] == threading.current_thread().name


async def test_errors_map_as_for_a_queued_read(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await db.read_now(lambda c: c.execute("SELECT nope FROM t").fetchall())
