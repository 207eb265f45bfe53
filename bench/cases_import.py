"""Bulk import vs raw sqlite3, interleaved round by round (issue 5: >= 7.5k issues/s).

    .venv/bin/python -m bench.cases_import --rounds 8 --per-round 20000

Each round generates PER_ROUND issues (bench.gen's text, with comments) once,
then imports them into a Rhythm tenant through `tracker.services.imports`
(its batches of BATCH_SIZE, pipelined) and into a raw sqlite3 file with the
same schema (`bench.raw_import.RawImporter`: issues, comments and FTS
rows with executemany in BATCH_SIZE transactions, no change log), in
alternating order. Both databases grow side by side, so index depth matches,
and drift on a shared box hits both sides of a round. Generation is not timed.

A third side, raw-json, is the raw stack written with Rhythm's own technique
(rows as JSON documents, see tracker.storage.bulk), so the cost of the change
log and of everything else Rhythm does shows without the executemany overhead
that the plain raw stack pays. Who goes first rotates every round.

Output: per-round rates and CPU time per issue, the median of each side and
the median of the per-round ratios, by wall clock and (against raw) by CPU
time (the process's, which counts Rhythm's threads too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from bench.gen import generate, setup_org
from bench.raw_import import RawImporter
from tracker.core import open_core
from tracker.domain.changes import Actor
from tracker.services.imports import import_issues
from tracker.settings import Settings

SIDES = ("rhythm", "raw", "raw-json")


async def compare(directory: Path, rounds: int, per_round: int, seed: int) -> None:
    settings = Settings(data_dir=directory / "rhythm", log_level="warning")
    stack = contextlib.AsyncExitStack()
    core = await stack.enter_async_context(open_core(settings, background=False))
    raws = {
        "raw": RawImporter(directory / "raw.db"),
        "raw-json": RawImporter(directory / "raw-json.db", documents=True),
    }
    try:
        user_id, _, (project,) = await setup_org(core, 1)
        reporters = [user_id] + [f"0190{n:04x}-0000-7000-8000-{n:012x}" for n in range(40)]
        actor, stream = Actor(user_id, "system"), generate(rounds * per_round, reporters, seed)
        rates: dict[str, list[float]] = {side: [] for side in SIDES}
        ratios: dict[str, list[float]] = {"raw": [], "raw-json": [], "cpu": []}
        for index in range(rounds):
            chunk = list(itertools.islice(stream, per_round))
            timings: dict[str, tuple[float, float]] = {}
            for side in SIDES[index % 3 :] + SIDES[: index % 3]:  # rotate who goes first
                if side in raws:
                    timings[side] = raws[side].run(chunk)
                else:
                    began, cpu = time.perf_counter(), time.process_time()
                    await import_issues(core, project, actor, chunk)
                    timings[side] = time.perf_counter() - began, time.process_time() - cpu
            for side in SIDES:
                rates[side].append(per_round / timings[side][0])
            for side in raws:
                ratios[side].append(rates["rhythm"][-1] / rates[side][-1])
            ratios["cpu"].append(timings["raw"][1] / timings["rhythm"][1])
            print(f"round {index + 1:2}: "
                  + "  ".join(f"{side} {rates[side][-1]:7,.0f}/s" for side in SIDES)
                  + f"  Rhythm/raw {ratios['raw'][-1]:.0%}  "
                  f"(CPU µs/issue: Rhythm {timings['rhythm'][1] / per_round * 1e6:.0f}, "
                  f"raw {timings['raw'][1] / per_round * 1e6:.0f})")  # fmt: skip
        median = {side: statistics.median(values) for side, values in rates.items()}
        print(
            f"median over {rounds} rounds of {per_round:,} issues: Rhythm "
            f"{median['rhythm']:,.0f} issues/s (with change log); raw sqlite3 "
            f"{median['raw']:,.0f}/s (executemany, no log): {statistics.median(ratios['raw']):.0%}"
            f" (by CPU time {statistics.median(ratios['cpu']):.0%}); raw sqlite3 "
            f"{median['raw-json']:,.0f}/s (JSON documents, no log): "
            f"{statistics.median(ratios['raw-json']):.0%}"
        )
    finally:
        for raw in raws.values():
            raw.conn.close()
        await stack.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_import", description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="where to put the databases (default: a tmp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rhythm-import-") as tmp:
        directory = args.dir or Path(tmp)
        asyncio.run(compare(directory, args.rounds, args.per_round, args.seed))


if __name__ == "__main__":
    main()
