"""Where the catch-up after a long read snapshot spends its time, phase by phase.

    .venv/bin/python -m bench.gen --data-dir /tmp/rhythm-200k --issues 200000
    .venv/bin/python -m bench.backup_phases --data-dir /tmp/rhythm-200k --hold 10

A diagnostic, not a product benchmark (that is `bench.cases_backup`). The data dir
is served by this process (a Core, as the server holds it) and a writer creates
issues back to back through the service layer. A child process holds a read-only
snapshot of the tenant for `--hold` seconds (what `rhythm backup` does while it
copies), so the WAL grows. Before the child lets go, the tenant's automatic
checkpoint is switched off; afterwards each phase of the catch-up runs as its
own job on the tenant's thread and is timed there (the writer keeps queuing):

1. `fsync` of the `-wal` file (what a checkpoint does first at synchronous=NORMAL),
   unless `--no-wal-fsync`;
2. `PRAGMA wal_checkpoint(PASSIVE)` (copy every frame back, fsync the database);
3. one small write transaction: the first commit after a complete checkpoint
   restarts the WAL and truncates it to `journal_size_limit`;
4. `PRAGMA wal_checkpoint(TRUNCATE)`.

Printed per round: the WAL's size before and after each phase, each phase's
time, and the writer's longest stall during the hold and during the catch-up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.cases_backup import Writer, org_id
from tracker.core import open_core
from tracker.settings import Settings
from tracker.storage.database import (
    JOURNAL_SIZE_LIMIT,
    WAL_AUTOCHECKPOINT_PAGES,
    WAL_TRIM_STEP,
    Database,
)

HOLDER = """
import contextlib, sqlite3, sys, time
from pathlib import Path
from tracker.storage.snapshots import WalFlusher
conn = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, isolation_level=None)
conn.execute("BEGIN")
conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
print("held", flush=True)
# fsync: the WAL is flushed while the snapshot is held, as snapshots.copy_database does
# final: only the last flush, just before the snapshot ends (every_s=inf)
every = float("inf") if sys.argv[3] == "final" else None
with WalFlusher(Path(sys.argv[1]), every) if sys.argv[3] != "-" else contextlib.nullcontext():
    time.sleep(float(sys.argv[2]))
conn.close()
"""


def mb(path: Path) -> float:
    return path.stat().st_size / 1e6 if path.exists() else 0.0


def timed(fn: Callable[[sqlite3.Connection], object]) -> Callable[[sqlite3.Connection], tuple]:
    def run(conn: sqlite3.Connection) -> tuple[float, object]:
        began = time.perf_counter()
        out = fn(conn)
        return time.perf_counter() - began, out

    return run


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # the -wal carries no POSIX locks: closing is safe
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def small_commit(conn: sqlite3.Connection) -> float:
    """One tiny write transaction; returns the COMMIT's own time."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_phase(x)")
    conn.execute("INSERT INTO bench_phase VALUES (1)")
    began = time.perf_counter()
    conn.execute("COMMIT")
    return time.perf_counter() - began


async def hold_snapshot(db: Database, writer: Writer, hold: float, fsync: str) -> float:
    """Start the holder; return the writer's longest stall (ms) while it holds."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(db.path), str(hold), fsync or "-",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    await child.stdout.readline()  # the snapshot is held
    writer.latencies.clear()
    await asyncio.sleep(hold - 0.5)
    return child  # type: ignore[return-value]


async def auto_round(db: Database, writer: Writer, hold: float, fsync: str) -> dict:
    """Today's path: the automatic checkpoint inside a commit pays the catch-up."""
    wal = db.path.with_name(db.path.name + "-wal")
    child = await hold_snapshot(db, writer, hold, fsync)
    out: dict = {"wal_before_release_mb": mb(wal)}
    await child.wait()  # type: ignore[attr-defined]
    out["hold_max_ms"] = max(writer.latencies) * 1000
    writer.latencies.clear()
    await asyncio.sleep(6.0)
    out["catchup_max_ms"] = max(writer.latencies) * 1000
    out["wal_after_mb"] = mb(wal)
    return out


async def one_round(db: Database, writer: Writer, hold: float, wal_fsync: bool) -> dict:
    wal = db.path.with_name(db.path.name + "-wal")
    child = await hold_snapshot(db, writer, hold, "")
    await db.read(lambda c: c.execute("PRAGMA wal_autocheckpoint = 0"))
    await child.wait()  # type: ignore[attr-defined]
    hold_max = max(writer.latencies) * 1000
    writer.latencies.clear()
    out: dict = {"wal_at_release_mb": mb(wal)}
    if wal_fsync:
        spent, _ = await db.read(timed(lambda c: fsync_path(wal)))
        out["wal_fsync_s"] = spent
    spent, res = await db.read(
        timed(lambda c: tuple(c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()))
    )
    out["passive_s"], out["passive_result"] = spent, res
    out["wal_after_passive_mb"] = mb(wal)
    spent, commit_s = await db.read(timed(small_commit))
    out["restart_commit_s"], out["commit_only_s"] = spent, commit_s
    out["wal_after_restart_mb"] = mb(wal)
    spent, res = await db.read(
        timed(lambda c: tuple(c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()))
    )
    out["truncate_s"], out["truncate_result"] = spent, res
    out["wal_after_truncate_mb"] = mb(wal)
    await db.read(lambda c: c.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}"))
    await asyncio.sleep(1.0)
    out["hold_max_ms"] = hold_max
    out["catchup_max_ms"] = max(writer.latencies) * 1000
    return out


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings(data_dir=args.data_dir, log_level="warning")
    async with open_core(settings, background=False) as core:
        oid = await org_id(core)
        async with core.tenants.lease(oid) as db:
            db.wal_trim_step = 0  # phases: SQLite's own truncation, timed
            if args.journal_size_limit is not None:
                await db.read(lambda c: c.execute(f"PRAGMA journal_size_limit = {args.jsl}"))
            if args.synchronous:
                await db.read(lambda c: c.execute(f"PRAGMA synchronous = {args.synchronous}"))
            writer = Writer(core, args.project)
            task = asyncio.create_task(writer.run())
            await asyncio.sleep(1.0)
            rows = []
            for n in range(1, args.rounds + 1):
                if args.mode == "phases":
                    row = await one_round(db, writer, args.hold, not args.no_wal_fsync)
                else:  # auto: each variant once per round, in turn
                    row = {}
                    for variant in args.variants.split(","):
                        db.wal_trim_step = WAL_TRIM_STEP if "trim" in variant else 0
                        flush = "fsync" if "fsync" in variant else ""
                        flush = "final" if "final" in variant else flush
                        got = await auto_round(db, writer, args.hold, flush)
                        print(f"round {n} {variant}: " + ", ".join(
                            f"{k}={fmt(v)}" for k, v in got.items()
                        ), flush=True)  # fmt: skip
                        row.update({f"{variant}_{k}": v for k, v in got.items()})
                        await asyncio.sleep(1.0)
                    first = args.variants.split(",")[0]
                    for variant in args.variants.split(",")[1:]:
                        row[f"ratio_{variant}"] = (
                            row[f"{variant}_catchup_max_ms"] / row[f"{first}_catchup_max_ms"]
                        )
                rows.append(row)
                prefix = f"round {n}: " if args.mode == "phases" else "  "
                print(prefix + ", ".join(f"{k}={fmt(v)}" for k, v in row.items()), flush=True)
                await asyncio.sleep(1.0)
            writer.stop()
            await task
            await db.read(lambda c: c.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}"))
    for key in rows[0]:
        if key.endswith(("_s", "_ms", "_mb")) or key.startswith("ratio"):
            print(f"median {key}: {fmt(statistics.median(r[key] for r in rows))}")
    print(f"load average {os.getloadavg()[0]:.1f}")


def fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backup_phases", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="made by bench.gen")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds the snapshot is held")
    parser.add_argument("--project", default="WEB")
    parser.add_argument("--mode", choices=["phases", "auto"], default="phases")
    parser.add_argument(
        "--variants",
        default="plain,fsync,fsync-trim",
        help="auto, comma-separated: plain (as before issue 19's stall work), fsync (WAL "
        "flushed under the snapshot, every second), final (flushed once, just before the "
        "snapshot ends), trim (WAL shrunk in steps), and combinations: fsync-trim, final-trim",
    )
    parser.add_argument("--no-wal-fsync", action="store_true", help="skip phase 1")
    parser.add_argument("--journal-size-limit", dest="jsl", type=int, default=None)
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default=None)
    args = parser.parse_args(argv)
    args.journal_size_limit = args.jsl
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
