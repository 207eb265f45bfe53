"""The checkpoint catch-up after a long backup snapshot, with and without the relay.

    .venv/bin/python -m bench.cases_backup_hold --data-dir /tmp/rhythm-200k --hold 20

What `rhythm backup` does to writers, without the copy's own I/O: a child process
holds a read snapshot of the tenant for HOLD seconds (as a long copy would), then
lets it go either at once (`plain`) or through `snapshots.Relay` (later snapshots
let go one at a time, as `snapshots.copy_database` does). A writer in this process
creates issues throughout; reported per round: its longest stall in the two seconds
before the child started and from the child's end on (the catch-up), and the WAL
size. Rounds alternate plain and relay; the median of per-pair ratios is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from bench.cases_backup import Writer, org_id
from tracker.core import open_core
from tracker.services.runtime import Core
from tracker.settings import Settings

HOLDER = """
import sys, time
from pathlib import Path
from tracker.storage import snapshots
db, hold, mode = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
began = time.monotonic()
start = snapshots._shm_frames(db)
conn = snapshots.read_only(db)
conn.execute("BEGIN")
conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
relay = snapshots.Relay(db, began) if mode == "relay" else None
time.sleep(hold)
if relay is not None:
    relay.stop()
conn.close()
released = time.monotonic()
if relay is not None:
    relay.release(start[0] if start else 0)
print(f"{time.monotonic() - released:.2f}")
"""


async def one_round(core: Core, project: str, db: Path, hold: float, mode: str) -> float:
    writer = Writer(core, project)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0.5)
    writer.latencies.clear()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(db), str(hold), mode, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    ended = time.perf_counter()
    await asyncio.sleep(3.0)  # the catch-up happens at the next commits
    writer.stop()
    await task
    wal = Path(f"{db}-wal")
    after = max((s for at, s in writer.stalls if at >= ended - 0.5), default=0.0)
    listed = ", ".join(f"{at - ended:+.2f} s: {s * 1000:.0f} ms" for at, s in writer.stalls)
    print(
        f"  {mode}: stalls > 100 ms from the child's end: {listed}; release took {out.decode().strip()} s; longest stall after the hold "
        f"{after * 1000:.0f} ms; WAL {wal.stat().st_size / 1e6 if wal.exists() else 0:,.0f} MB",
        flush=True,
    )
    return max(after, 0.001)


async def main_async(data_dir: Path, rounds: int, project: str, hold: float) -> None:
    settings = Settings(data_dir=data_dir, log_level="warning")
    ratios = []
    async with open_core(settings, background=False) as core:
        db = data_dir / (await org_id(core)) / "tracker.db"
        for round_no in range(1, rounds + 1):
            order = ("plain", "relay") if round_no % 2 else ("relay", "plain")
            got = {mode: await one_round(core, project, db, hold, mode) for mode in order}
            ratios.append(got["relay"] / got["plain"])
            print(f"round {round_no}: relay/plain longest stall {ratios[-1]:.2f}", flush=True)
    print(
        f"median relay/plain {statistics.median(ratios):.2f} "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_backup_hold", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="made by bench.gen")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--project", default="WEB")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds the snapshot is held")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.data_dir, args.rounds, args.project, args.hold))


if __name__ == "__main__":
    main()
