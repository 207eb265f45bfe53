"""Online backup of a big tenant: how long it takes, and how long a writer stalls meanwhile.

    .venv/bin/python -m bench.gen --data-dir /tmp/rhythm-1m --issues 1000000 --baseline 0
    .venv/bin/python -m bench.cases_backup --data-dir /tmp/rhythm-1m --rounds 3 --compare

The data dir is served by this process (a Core, as the server would hold it, with the
server's backup socket); a writer creates issues one after another through the
service layer, as fast as it can, and records each write's latency (submit to
acknowledged COMMIT). Each round: (B) the writer runs while `rhythm backup --org
bench` runs as its own process (what an operator does): the CLI asks this process,
through the socket, to copy the tenant in page batches on the connection it owns;
then (A) the writer runs alone for as long. Reported per round: backup time and
size; the writer's longest stall and p99 in B and A; the median of the per-round
ratios of B to A.

`--compare` adds, in each round, (O) the same backup the old way: the socket is
closed, so `rhythm backup` falls back to copying from read-only snapshots in its own
process (the path every backup took before the eighth session), and reports B/O too.
`--flush-every`, `--slice-mb`, `--wal-slice-mb` tune that snapshot path
(tracker/storage/snapshots.py); `--batch-pages` the page batches of the new one.
(Figures of sessions before the eighth were taken with this bench's earlier version,
whose "old" was the snapshot path with some of its measures off: see git history.)
The WAL file is sampled every 20 ms: its peak and when (from the backup's start)
place a snapshot's end among the stalls. Each backup reports when its phases ran
(the copy, the source WAL's last flush, quick check, fsync of the copy, SHA-256), and
each stall over 100 ms is listed with the phases it overlapped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tracker.services.online_backups as online
import tracker.storage.snapshots as snapshots
from bench.gen import EMAIL, ORG
from tracker.core import open_core
from tracker.domain.changes import Origin
from tracker.domain.models.issues import IssueCreate
from tracker.http.backup_door import BackupDoor
from tracker.services import issues
from tracker.services.acting import act_as
from tracker.services.runtime import Core
from tracker.settings import Settings
from tracker.storage.database import Database
from tracker.storage.page_copy import PageCopy


class Writer:
    """Creates issues back to back; every write's latency in seconds."""

    def __init__(self, core: Core, project: str) -> None:
        self.core = core
        self.project = project
        self.latencies: list[float] = []
        self.stalls: list[tuple[float, float]] = []  # (finished at, seconds) over 100 ms
        self._stop = asyncio.Event()

    async def run(self) -> None:
        access, actor = await act_as(self.core, ORG, self.project, EMAIL, Origin.SYSTEM)
        n = 0
        while not self._stop.is_set():
            began = time.perf_counter()
            data = IssueCreate(title=f"written during the backup bench {n}")
            await issues.create_issue(self.core, access, data, actor)
            spent = time.perf_counter() - began
            self.latencies.append(spent)
            if spent > 0.1:
                self.stalls.append((time.perf_counter(), spent))
            n += 1

    def stop(self) -> None:
        self._stop.set()


def summary(latencies: list[float]) -> tuple[float, float, int]:
    """(longest stall ms, p99 ms, writes)."""
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return ordered[-1] * 1000, p99 * 1000, len(ordered)


BACKUP_SPAN: list[float] = [0.0, 0.0]  # perf_counter at the backup's start and end


CATCH_UP_S = 5.0  # after the WAL's peak (the snapshot's end): the catch-up's window
FLUSH_EVERY: float | None = None  # --flush-every: the snapshot path's WAL_FLUSH_EVERY_S
SLICE_MB: float | None = None  # --slice-mb: the snapshot path's COPY_FLUSH_SLICE
WAL_SLICE_MB: float | None = None  # --wal-slice-mb: the snapshot path's WAL_FLUSH_SLICE
# In the backup process (the snapshot path): print when each phase ran (perf_counter is
# CLOCK_MONOTONIC on Linux, one clock for both processes). The functions are looked up
# as module globals at call time, so wrapping them here times the real code.
TRACE = """
import time
import tracker.storage.snapshots as s
def _timed(name, fn):
    def run(*args, **kwargs):
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            print(f"phase {name} {began} {time.perf_counter()}", flush=True)
    return run
s.copy_database = _timed("copy", s.copy_database)
s.fsync_wal = _timed("wal-flush", s.fsync_wal)
s.fsync_file = _timed("fsync", s.fsync_file)
s.sha256_of = _timed("sha256", s.sha256_of)
"""
PHASES: list[tuple[str, float, float]] = []  # the last backup's (name, start, end)
STEPS: list[float] = []  # the last page-batch backup's steps, seconds each


def trace_here() -> None:
    """The same phases for the page-batch path, which runs in this process."""

    def timed(name: str, fn: Any) -> Any:
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                PHASES.append((name, began, time.perf_counter()))

        def run(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                PHASES.append((name, began, time.perf_counter()))

        return run_async if asyncio.iscoroutinefunction(fn) else run

    online.copy_pages = timed("copy+seal", online.copy_pages)
    step = PageCopy.step

    def timed_step(self: PageCopy, pages: int) -> bool:  # on the database's thread
        began = time.perf_counter()
        try:
            return step(self, pages)
        finally:
            STEPS.append(time.perf_counter() - began)

    PageCopy.step = timed_step  # type: ignore[method-assign]
    snapshots.seal = timed("seal", snapshots.seal)
    snapshots.fsync_file = timed("fsync", snapshots.fsync_file)
    snapshots.sha256_of = timed("sha256", snapshots.sha256_of)


async def backup_process(data_dir: Path, dest: Path, old: bool = False) -> float:
    began = time.perf_counter()
    BACKUP_SPAN[0] = began
    PHASES.clear()
    STEPS.clear()
    prefix = TRACE
    if FLUSH_EVERY is not None:
        prefix += f"s.WAL_FLUSH_EVERY_S = float({str(FLUSH_EVERY)!r})\n"
    if SLICE_MB is not None:
        prefix += f"s.COPY_FLUSH_SLICE = int({SLICE_MB!r} * 1024 * 1024)\n"
    if WAL_SLICE_MB is not None:
        prefix += f"s.WAL_FLUSH_SLICE = int({WAL_SLICE_MB!r} * 1024 * 1024)\n"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", prefix + "from cli.main import run; run()",
        "backup", str(dest), "--org", ORG, "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"backup failed: {out.decode()}")
    BACKUP_SPAN[1] = time.perf_counter()
    text = out.decode()
    if ("by the server" in text) == old:
        raise SystemExit(f"the backup did not take the {'old' if old else 'new'} path: {text}")
    for line in text.splitlines():
        if line.startswith("phase "):
            _, name, start, end = line.split()
            PHASES.append((name, float(start), float(end)))
    return BACKUP_SPAN[1] - began


def phases_of(start: float, end: float) -> str:
    """The backup phases that overlapped [start, end], or what lay between them."""
    names = [name for name, a, b in PHASES if a < end and b > start]
    if names:
        return "+".join(dict.fromkeys(names))
    if PHASES and start >= max(b for _, _, b in PHASES):
        return "after"
    return "between"  # e.g. quick_check, which runs between the copy and its fsync


async def org_id(core: Core) -> str:
    row = await core.system.read(
        lambda c: c.execute("SELECT id FROM orgs WHERE slug = ?", (ORG,)).fetchone()
    )
    return str(row[0])


async def timed_writer(core: Core, project: str, work: asyncio.Future[float] | float) -> Writer:
    writer = Writer(core, project)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0.5)  # warm: the tenant open and first writes are not the backup's
    writer.latencies.clear()
    writer.stalls.clear()
    if isinstance(work, float):
        await asyncio.sleep(work)
    else:
        await work
    writer.stop()
    await task
    return writer


async def sample_wal(wal: Path, samples: list[tuple[float, int]], stop: asyncio.Event) -> None:
    """The WAL file's size every 20 ms (a stat, no open: nothing of SQLite's is touched)."""
    while not stop.is_set():
        with contextlib.suppress(OSError):
            samples.append((time.perf_counter(), wal.stat().st_size))
        await asyncio.sleep(0.02)


async def backup_round(
    core: Core, db: Database, data_dir: Path, project: str, dest: Path, old: bool
) -> tuple[Writer, float, int]:
    """(B) or (O): the writer while one backup runs; returns the writer, seconds, bytes."""
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def start_backup() -> None:
        await asyncio.sleep(0.5)  # after the writer's warm-up
        done.set_result(await backup_process(data_dir, dest, old))

    samples: list[tuple[float, int]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_wal(Path(f"{db.path}-wal"), samples, stop))
    runner = asyncio.create_task(start_backup())
    during = await timed_writer(core, project, done)
    await runner
    await asyncio.sleep(3.0)  # the catch-up may come after the backup's end
    stop.set()
    await sampler
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    shutil.rmtree(dest)
    start, end = BACKUP_SPAN
    stalls = ", ".join(
        f"{at - start:+.1f}/{at - end:+.1f} s: {spent * 1000:.0f} ms [{phases_of(at - spent, at)}]"
        for at, spent in during.stalls
    )
    timeline = ", ".join(f"{name} {a - start:+.1f}..{b - start:+.1f}" for name, a, b in PHASES)
    peak_at, peak = max(samples, key=lambda s: s[1]) if samples else (start, 0)
    label = "old" if old else "new"
    catch_up = max(
        (spent for at, spent in during.stalls if -1.0 <= at - spent - peak_at <= CATCH_UP_S),
        default=0.0,
    )
    print(f"  {label}: phases (s from backup start): {timeline}")
    if STEPS:
        ordered = sorted(STEPS)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"  {label}: {len(ordered):,} page batches of {online.BATCH_PAGES} pages: "
            f"median {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
            f"max {ordered[-1] * 1000:.1f} ms on the database's thread"
        )
    print(
        f"  {label}: stalls > 100 ms (from backup start/end): {stalls}; "
        f"WAL peak {peak / 1e6:,.0f} MB at {peak_at - start:+.1f} s; "
        f"writes {len(during.latencies)}; longest stall starting "
        f"from 1 s before to {CATCH_UP_S:.0f} s after it (the catch-up): {catch_up * 1000:.0f} ms"
    )
    return during, done.result(), size


async def main_async(
    data_dir: Path, rounds: int, project: str, scratch: Path, compare: bool
) -> None:
    settings = Settings(data_dir=data_dir, log_level="warning")
    ratios, p99_ratios, times, old_ratios, old_times = [], [], [], [], []
    trace_here()
    async with open_core(settings, background=False) as core:
        oid = await org_id(core)
        door = BackupDoor(core)  # what `rhythm serve` runs beside its HTTP site
        if not await door.start():
            raise SystemExit(f"no backup socket in {data_dir}: its path is too long")
        async with core.tenants.lease(oid) as db:  # open for the whole run
            for round_no in range(1, rounds + 1):
                # B: the writer while the backup runs; the backup starts after the warm-up
                during, seconds, size = await backup_round(
                    core, db, data_dir, project, scratch / f"backup-{round_no}", False
                )
                # A: the writer alone for as long
                alone = await timed_writer(core, project, seconds)
                b_max, b_p99, b_n = summary(during.latencies)
                a_max, a_p99, a_n = summary(alone.latencies)
                times.append(seconds)
                ratios.append(b_max / a_max)
                p99_ratios.append(b_p99 / a_p99)
                print(
                    f"round {round_no}: backup {seconds:.1f} s, {size / 1e6:,.0f} MB; writer "
                    f"during: {b_n / seconds:,.0f} writes/s, max {b_max:.1f} ms, p99 "
                    f"{b_p99:.1f} ms; alone: {a_n / seconds:,.0f} writes/s, max {a_max:.1f} ms, "
                    f"p99 {a_p99:.1f} ms",
                    flush=True,
                )
                if compare:  # O: the snapshot path (the CLI falls back: no socket)
                    await door.stop()
                    old, old_s, _ = await backup_round(
                        core, db, data_dir, project, scratch / f"old-{round_no}", True
                    )
                    await door.start()
                    o_max, o_p99, _ = summary(old.latencies)
                    old_ratios.append(b_max / o_max)
                    old_times.append(seconds / old_s)
                    print(
                        f"  old: backup {old_s:.1f} s; max {o_max:.1f} ms, p99 {o_p99:.1f} ms; "
                        f"new/old longest stall {b_max / o_max:.2f}, backup time "
                        f"{seconds / old_s:.2f}",
                        flush=True,
                    )
        await door.stop()
    print(
        f"backup time median {statistics.median(times):.1f} s; longest stall during/alone "
        f"median ratio {statistics.median(ratios):.2f}, p99 ratio "
        f"{statistics.median(p99_ratios):.2f} (load average {os.getloadavg()[0]:.1f})"
    )
    if compare:
        print(
            f"new/old: longest stall median ratio {statistics.median(old_ratios):.2f}, "
            f"backup time {statistics.median(old_times):.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_backup", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="made by bench.gen")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--project", default="WEB", help="where the writer creates issues")
    parser.add_argument("--scratch", type=Path, default=None, help="where backups go")
    parser.add_argument("--compare", action="store_true", help="also the old way, each round")
    parser.add_argument(
        "--flush-every", type=float, default=None, help="WAL_FLUSH_EVERY_S (inf: last flush only)"
    )
    parser.add_argument("--slice-mb", type=float, default=None, help="COPY_FLUSH_SLICE, MB")
    parser.add_argument("--wal-slice-mb", type=float, default=None, help="WAL_FLUSH_SLICE, MB")
    parser.add_argument(
        "--batch-pages", type=int, default=None, help="pages per batch of the new path"
    )
    args = parser.parse_args(argv)
    global FLUSH_EVERY, SLICE_MB, WAL_SLICE_MB
    FLUSH_EVERY, SLICE_MB, WAL_SLICE_MB = args.flush_every, args.slice_mb, args.wal_slice_mb
    if args.batch_pages is not None:
        online.BATCH_PAGES = args.batch_pages
    with tempfile.TemporaryDirectory(dir=args.scratch, prefix="rhythm-backup-bench-") as scratch:
        asyncio.run(
            main_async(args.data_dir, args.rounds, args.project, Path(scratch), args.compare)
        )


if __name__ == "__main__":
    main()
