"""Online backup of a big tenant: how long it takes, and how long a writer stalls meanwhile.

    .venv/bin/python -m bench.gen --data-dir /tmp/rhythm-1m --issues 1000000 --baseline 0
    .venv/bin/python -m bench.cases_backup --data-dir /tmp/rhythm-1m --rounds 3

The data dir is served by this process (a Core, as the server would hold it); a
writer creates issues one after another through the service layer, as fast as it
can, and records each write's latency (submit to acknowledged COMMIT). Each round:
(B) the writer runs while `rhythm backup --org bench` runs as its own process (what
an operator does), then (A) the writer runs alone for as long. Reported per round:
backup time and size; the writer's longest stall and p99 in B and A; the median of
the per-round ratios of B to A.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.gen import EMAIL, ORG
from tracker.core import open_core
from tracker.domain.models.issues import IssueCreate
from tracker.services import issues
from tracker.services.acting import act_as
from tracker.services.runtime import Core
from tracker.settings import Settings


class Writer:
    """Creates issues back to back; every write's latency in seconds."""

    def __init__(self, core: Core, project: str) -> None:
        self.core = core
        self.project = project
        self.latencies: list[float] = []
        self.stalls: list[tuple[float, float]] = []  # (finished at, seconds) over 100 ms
        self._stop = asyncio.Event()

    async def run(self) -> None:
        access, actor = await act_as(self.core, ORG, self.project, EMAIL, "system")
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


async def backup_process(data_dir: Path, dest: Path) -> float:
    began = time.perf_counter()
    BACKUP_SPAN[0] = began
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import run; run()",
        "backup", str(dest), "--org", ORG, "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"backup failed: {out.decode()}")
    BACKUP_SPAN[1] = time.perf_counter()
    return BACKUP_SPAN[1] - began


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


async def main_async(data_dir: Path, rounds: int, project: str, scratch: Path) -> None:
    settings = Settings(data_dir=data_dir, log_level="warning")
    ratios, p99_ratios, times = [], [], []
    async with open_core(settings, background=False) as core:
        for round_no in range(1, rounds + 1):
            dest = scratch / f"backup-{round_no}"
            # B: the writer while the backup runs; the backup starts after the warm-up
            done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

            async def start_backup(dest: Path = dest, done: asyncio.Future[float] = done) -> None:
                await asyncio.sleep(0.5)
                done.set_result(await backup_process(data_dir, dest))

            runner = asyncio.create_task(start_backup())
            during = await timed_writer(core, project, done)
            await runner
            seconds = done.result()
            size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
            shutil.rmtree(dest)
            # A: the writer alone for as long
            alone = await timed_writer(core, project, seconds)
            start, end = BACKUP_SPAN
            wal = data_dir / (await org_id(core)) / "tracker.db-wal"
            stalls = ", ".join(
                f"{at - start:+.1f}/{at - end:+.1f} s: {spent * 1000:.0f} ms"
                for at, spent in during.stalls
            )
            wal_mb = wal.stat().st_size / 1e6 if wal.exists() else 0.0
            print(f"  stalls > 100 ms (from backup start/end): {stalls}; WAL {wal_mb:,.0f} MB")
            b_max, b_p99, b_n = summary(during.latencies)
            a_max, a_p99, a_n = summary(alone.latencies)
            times.append(seconds)
            ratios.append(b_max / a_max)
            p99_ratios.append(b_p99 / a_p99)
            print(
                f"round {round_no}: backup {seconds:.1f} s, {size / 1e6:,.0f} MB; writer during: "
                f"{b_n / seconds:,.0f} writes/s, max {b_max:.1f} ms, p99 {b_p99:.1f} ms; "
                f"alone: {a_n / seconds:,.0f} writes/s, max {a_max:.1f} ms, p99 {a_p99:.1f} ms",
                flush=True,
            )
    print(
        f"backup time median {statistics.median(times):.1f} s; longest stall during/alone "
        f"median ratio {statistics.median(ratios):.2f}, p99 ratio "
        f"{statistics.median(p99_ratios):.2f} (load average {os.getloadavg()[0]:.1f})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_backup", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="made by bench.gen")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--project", default="WEB", help="where the writer creates issues")
    parser.add_argument("--scratch", type=Path, default=None, help="where backups go")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.scratch, prefix="rhythm-backup-bench-") as scratch:
        asyncio.run(main_async(args.data_dir, args.rounds, args.project, Path(scratch)))


if __name__ == "__main__":
    main()
