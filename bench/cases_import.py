"""Bulk import vs raw sqlite3, interleaved round by round (issue 5: >= 7.5k issues/s).

    .venv/bin/python -m bench.cases_import --rounds 8 --per-round 20000

Each round generates PER_ROUND issues (bench.gen's text, with comments) once,
then imports them into a Rhythm tenant through `tracker.services.imports`
(its batches of BATCH_SIZE, pipelined) and into a raw sqlite3 file with the
same schema (`bench.gen.raw_import_rate`'s writes: issues, comments and FTS
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
import itertools
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.gen import generate, setup_org
from tracker.core import close_core, open_core
from tracker.services.changes import Actor
from tracker.services.imports import BATCH_SIZE, ImportIssue, import_issues
from tracker.settings import Settings
from tracker.storage.migrate import apply_migrations


class RawImporter:
    """Plain sqlite3, same schema and pragmas as a tenant, no change log.

    With `documents`, rows go in as JSON documents (`INSERT … SELECT … FROM
    json_each(?)`, the statements tracker.storage.bulk uses) instead of executemany:
    the raw stack given Rhythm's own technique, so what the log costs shows.
    """

    def __init__(self, path: Path, documents: bool = False) -> None:
        self.documents = documents
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        apply_migrations(self.conn, "tenant")
        self.conn.execute("INSERT INTO projects (id, key, name, created_at, updated_at) "
                          "VALUES ('p', 'RAW', 'Raw', 'x', 'x')")  # fmt: skip
        self.conn.execute("INSERT INTO stages VALUES ('s', 'p', 'Open', 'todo', 0, 'x', 'x')")
        self.row_id = 0

    def run(self, issues: list[ImportIssue]) -> tuple[float, float]:
        """Import in BATCH_SIZE transactions; returns (wall, CPU) seconds spent in SQLite."""
        spent = [
            self.run_batch(issues[n : n + BATCH_SIZE]) for n in range(0, len(issues), BATCH_SIZE)
        ]
        return sum(wall for wall, _ in spent), sum(cpu for _, cpu in spent)

    def run_batch(self, chunk: list[ImportIssue]) -> tuple[float, float]:
        """One transaction; returns (wall, CPU) seconds spent in SQLite."""
        issues, comments, fts = [], [], []
        for item in chunk:
            self.row_id += 1
            row_id = self.row_id
            issues.append((row_id, f"i{row_id}", row_id, item.title, item.description,
                           item.reporter, item.created_at, item.updated_at))  # fmt: skip
            bodies = sorted(item.comments, key=lambda c: c.created_at)
            comments += [(f"c{row_id}-{n}", f"i{row_id}", c.author, c.body, c.created_at)
                         for n, c in enumerate(bodies)]  # fmt: skip
            fts.append((row_id, item.title, item.description, "\n".join(c.body for c in bodies)))
        if self.documents:
            return self._run_documents(issues, comments, fts)
        began, cpu = time.perf_counter(), time.process_time()
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO issues (row_id, id, project_id, number, title, description, stage_id, "
            "rank, reporter, created_at, updated_at) "
            "VALUES (?, ?, 'p', ?, ?, ?, 's', 'a0', ?, ?, ?)",
            issues,
        )
        self.conn.executemany(
            "INSERT INTO comments (id, issue_id, author, body, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?5)",
            comments,
        )
        self.conn.executemany(
            "INSERT INTO issue_search (rowid, title, description, comments) VALUES (?, ?, ?, ?)",
            fts,
        )
        self.conn.execute("COMMIT")
        return time.perf_counter() - began, time.process_time() - cpu

    def _run_documents(
        self, issues: list[tuple], comments: list[tuple], fts: list[tuple]
    ) -> tuple[float, float]:
        documents = [json.dumps(rows, ensure_ascii=False) for rows in (issues, comments, fts)]
        began, cpu = time.perf_counter(), time.process_time()
        self.conn.execute("BEGIN")
        self.conn.execute(
            "INSERT INTO issues (row_id, id, project_id, number, title, description, stage_id, "
            "rank, reporter, created_at, updated_at) "
            "SELECT v ->> 0, v ->> 1, 'p', v ->> 2, v ->> 3, v ->> 4, 's', 'a0', v ->> 5, "
            "v ->> 6, v ->> 7 FROM (SELECT value AS v FROM json_each(?))",
            (documents[0],),
        )
        self.conn.execute(
            "INSERT INTO comments (id, issue_id, author, body, created_at, updated_at) "
            "SELECT v ->> 0, v ->> 1, v ->> 2, v ->> 3, v ->> 4, v ->> 4 "
            "FROM (SELECT value AS v FROM json_each(?))",
            (documents[1],),
        )
        self.conn.execute(
            "INSERT INTO issue_search (rowid, title, description, comments) "
            "SELECT v ->> 0, v ->> 1, v ->> 2, v ->> 3 FROM (SELECT value AS v FROM json_each(?))",
            (documents[2],),
        )
        self.conn.execute("COMMIT")
        return time.perf_counter() - began, time.process_time() - cpu


SIDES = ("rhythm", "raw", "raw-json")


async def compare(directory: Path, rounds: int, per_round: int, seed: int) -> None:
    core = await open_core(Settings(data_dir=directory / "rhythm", log_level="warning"))
    raws = {
        "raw": RawImporter(directory / "raw.db"),
        "raw-json": RawImporter(directory / "raw-json.db", documents=True),
    }
    try:
        user_id, org_id, (project_id,) = await setup_org(core, 1)
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
                    await import_issues(core, org_id, project_id, actor, chunk)
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
        await close_core(core)


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
