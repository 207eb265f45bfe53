"""A WAL grown under a long read snapshot (an online backup) is trimmed back in steps.

SQLite alone truncates it to `journal_size_limit` in one commit, and freeing that
much file stalled a writer (docs/operations-data.md, "the stall"). The snapshot
here is held by a read-only connection, as `rhythm backup` holds one.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from tracker.storage import snapshots
from tracker.storage.database import Database

KB = 1024
LIMIT = 256 * KB
STEP = 256 * KB


async def grow_then_release(tmp_path: Path, step: int) -> tuple[list[int], Database, Path]:
    """Grow the WAL to ~3 MB under a held snapshot, let go, keep writing: WAL sizes seen."""
    path = tmp_path / "t.db"
    db = await Database.open(path, create=True)
    db.wal_size_limit, db.wal_trim_step = LIMIT, step
    await db.write(lambda c: c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB)"))
    await db.read(lambda c: c.execute("PRAGMA wal_autocheckpoint = 32"))  # restarts often
    reader = snapshots.read_only(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # the snapshot is held from here
    for _ in range(48):
        await db.write(lambda c: c.execute("INSERT INTO t(pad) VALUES (randomblob(60000))"))
    wal = Path(f"{path}-wal")
    grown = wal.stat().st_size
    assert grown > 2_500 * KB  # the held snapshot kept every checkpoint from passing it
    reader.close()
    sizes = [grown]
    for _ in range(120):
        await db.write(lambda c: c.execute("INSERT INTO t(pad) VALUES (randomblob(3000))"))
        sizes.append(wal.stat().st_size)
    return sizes, db, path


async def test_grown_wal_shrinks_by_steps_back_to_the_limit(tmp_path: Path) -> None:
    sizes, db, path = await grow_then_release(tmp_path, STEP)
    try:
        drops = [a - b for a, b in itertools.pairwise(sizes) if b < a]
        assert len(drops) >= 5  # many small trims, one per WAL restart
        assert max(drops) <= 2 * STEP  # never the whole grown file at once
        assert sizes[-1] <= LIMIT + STEP
        rows = await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
        assert rows == 48 + 120
        check = await db.read(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0])
        assert check == "ok"
    finally:
        await db.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


async def test_without_steps_sqlite_truncates_all_at_once(tmp_path: Path) -> None:
    """The contrast that makes the test above mean something: SQLite's own behaviour."""
    sizes, db, _ = await grow_then_release(tmp_path, 0)
    try:
        drops = [a - b for a, b in itertools.pairwise(sizes) if b < a]
        assert max(drops) > 2_000 * KB
    finally:
        await db.close()


async def test_limit_is_back_to_normal_once_trimmed(tmp_path: Path) -> None:
    _sizes, db, _ = await grow_then_release(tmp_path, STEP)
    try:
        limit = await db.read(lambda c: c.execute("PRAGMA journal_size_limit").fetchone()[0])
        assert limit == LIMIT
    finally:
        await db.close()
