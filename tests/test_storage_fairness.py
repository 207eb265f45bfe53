"""Item 2: one greedy reader must not stall a tenant's other users.

Eight worst-case queries (each would run to its budget) are queued on the
tenant's one connection; another user's cheap read and a write must complete
while those are still queued or running, not after them. The assertions are
about order (who finished first), with only loose time bounds, so a slow box
cannot make them flake.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from tracker.errors import QueryTooExpensive
from tracker.storage.database import MAX_SLICE_MS, Database

#: Runs until interrupted: a recursive count far beyond any budget here.
RUNAWAY = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
    "SELECT count(*) FROM n"
)


def runaway(conn: sqlite3.Connection) -> int:
    return int(conn.execute(RUNAWAY).fetchone()[0])


def one_row(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT x FROM t WHERE rowid = 1").fetchone()[0])


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = await Database.open(tmp_path / "t.db", create=True)
    await database.write(lambda c: c.execute("CREATE TABLE t (x INTEGER)"))
    await database.write(lambda c: c.execute("INSERT INTO t VALUES (7)"))
    yield database  # type: ignore[misc]
    await database.close()


async def test_cheap_read_and_write_pass_eight_queued_greedy_queries(db: Database) -> None:
    greedy = [asyncio.create_task(db.read(runaway, time_limit_ms=4000)) for _ in range(8)]
    await asyncio.sleep(0.05)  # the first greedy query is running, seven are queued
    started = time.monotonic()
    assert await db.read(one_row) == 7
    read_s = time.monotonic() - started
    assert not any(task.done() for task in greedy[1:])  # still queued behind us
    started = time.monotonic()
    await db.write(lambda c: c.execute("UPDATE t SET x = 8"))
    write_s = time.monotonic() - started
    assert not all(task.done() for task in greedy)
    # Before: the read waited for every greedy query (8 x 4 s). Now one slice.
    assert read_s < 1.0 and write_s < 1.0, (read_s, write_s)
    results = await asyncio.gather(*greedy, return_exceptions=True)
    assert all(isinstance(r, QueryTooExpensive) for r in results)


async def test_queue_time_counts_against_the_budget(db: Database) -> None:
    """Eight 300 ms queries end together after ~300 ms, not one after another (2.4 s)."""
    started = time.monotonic()
    results = await asyncio.gather(
        *(db.read(runaway, time_limit_ms=300) for _ in range(8)), return_exceptions=True
    )
    assert all(isinstance(r, QueryTooExpensive) for r in results)
    assert time.monotonic() - started < 1.5


async def test_an_expensive_query_alone_is_never_preempted(db: Database) -> None:
    """With nothing else waiting, a query longer than any slice runs to completion."""
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400000) "
        "SELECT count(*) FROM n"
    )
    started = time.monotonic()
    assert await db.read(lambda c: c.execute(slow).fetchone()[0], time_limit_ms=5000) == 400000
    assert time.monotonic() - started > MAX_SLICE_MS / 1000  # it did outlast a slice


async def test_a_preempted_query_still_completes_between_cheap_reads(db: Database) -> None:
    """Cheap reads arriving now and then delay a moderate query, they do not kill it."""
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) "
        "SELECT count(*) FROM n"
    )
    query = asyncio.create_task(db.read(lambda c: c.execute(slow).fetchone()[0], 5000))
    for _ in range(3):
        await asyncio.sleep(0.01)
        assert await db.read(one_row) == 7
    assert await query == 200000


async def test_another_users_search_runs_next_not_after_the_greedy_queue(db: Database) -> None:
    greedy = [
        asyncio.create_task(db.read(runaway, time_limit_ms=3000, owner="greedy")) for _ in range(8)
    ]
    await asyncio.sleep(0.05)
    moderate = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
        "SELECT count(*) FROM n"
    )
    count = await db.read(lambda c: c.execute(moderate).fetchone()[0], 3000, owner="other")
    assert count == 20000
    assert sum(task.done() for task in greedy) <= 2  # it ran second, not ninth
    await asyncio.gather(*greedy, return_exceptions=True)


async def test_fair_lane_rotates_between_owners_and_survives_cancellation() -> None:
    from tracker.storage.fairness import FairLane

    lane, order = FairLane(), []
    release = asyncio.Event()

    async def job(owner: str, n: int) -> None:
        async with lane.turn(owner):
            order.append(f"{owner}{n}")
            await release.wait()

    first = asyncio.create_task(job("a", 0))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(job("a", n)) for n in range(1, 4)]
    tasks += [asyncio.create_task(job("b", n)) for n in range(2)]
    await asyncio.sleep(0)
    tasks[1].cancel()  # a2 gives up while queued
    release.set()
    await asyncio.gather(first, *tasks, return_exceptions=True)
    assert order == ["a0", "a1", "b0", "a3", "b1"]
    assert lane.queued == 0
