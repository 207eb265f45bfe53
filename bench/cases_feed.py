"""The change feed: reading N changes through `services.feed.since` vs raw sqlite3.

    python -m bench.cases_feed --changes 10000 --rounds 7

Setup: a fresh data dir, the bench org (bench.gen.setup_org: two projects, one
private), issues imported through the real import path (one `create` change per
issue and per comment, images included), then field updates through `mutate`,
until the log holds at least N changes. Each round then reads the whole log from
seq 0 in pages of 1,000 rows, alternating sides with rotating order:

* raw: plain sqlite3 on the tenant file, `SELECT * FROM changes WHERE seq > ?
  ORDER BY seq LIMIT 1000` until empty (rows as tuples, nothing decoded).
* system: `since(core, org, seq)` as the system (every project; Change records
  with old/new/meta decoded, grouped into whole batches).
* member: `since(..., user_id=...)` as an org member who cannot see the private
  project (visibility decided in the same read).

The figure is rows/s; the goal is Rhythm >= 70 % of raw.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.gen import generate, setup_org
from tracker.core import open_core
from tracker.domain.changes import Actor, Entity, Op
from tracker.services import feed
from tracker.services.changes import mutate_org
from tracker.services.imports import import_issues
from tracker.settings import Settings
from tracker.storage import orgs as org_sql


async def fill(settings: Settings, changes: int) -> tuple[str, str]:
    """Create the org and enough changes; returns (org id, a member's user id)."""
    async with open_core(settings, background=False) as core:
        user_id, org_id, targets = await setup_org(core, 2)
        project_ids = [target.project.id for target in targets]
        actor = Actor(user_id, "system")
        await import_issues(core, targets[0], actor, list(generate(changes // 4, [user_id], 7)))
        await import_issues(core, targets[1], actor, list(generate(changes // 8, [user_id], 8)))
        member = "0190ffff-0000-7000-8000-000000000001"
        await core.system.write(
            lambda conn: org_sql.insert_member(
                conn,
                {
                    "org_id": org_id,
                    "user_id": member,
                    "role": "member",
                    "created_at": "2026-01-01T00:00:00Z",
                },
            )
        )
        count = await feed.head(core, org_id)
        n = 0
        while count < changes:

            def work(uow, n=n):
                for field in ("priority", "title"):
                    uow.record(
                        Entity.ISSUE,
                        f"bench-{n}",
                        Op.UPDATE,
                        project=project_ids[n % 2],
                        field=field,
                        old="a",
                        new="b",
                        version=2,
                        issue=f"bench-{n}",
                    )

            await mutate_org(core, org_id, actor, work)
            n, count = n + 1, count + 2
        return org_id, member


def read_raw(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        seq, rows = 0, 0
        while True:
            page = conn.execute(
                "SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT 1000", (seq,)
            ).fetchall()
            if not page:
                return rows
            rows += len(page)
            seq = page[-1][0]
    finally:
        conn.close()


async def read_feed(core, org_id: str, user_id: str | None) -> int:
    seq, rows = 0, 0
    while True:
        page = await feed.since(core, org_id, seq, user_id=user_id, limit=1000)
        rows += sum(len(b.changes) for b in page.batches)
        seq = page.next_seq
        if page.at_head:
            return rows


async def main_async(changes: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        org_id, member = await fill(settings, changes)
        tenant = settings.data_dir / org_id / "tracker.db"
        async with open_core(settings, background=False) as core:
            total = await feed.head(core, org_id)
            print(f"{total:,} changes in the log")
            rates: dict[str, list[float]] = {"raw": [], "system": [], "member": []}
            for r in range(rounds):
                sides = ["raw", "system", "member"]
                sides = sides[r % 3 :] + sides[: r % 3]
                for side in sides:
                    began = time.perf_counter()
                    if side == "raw":
                        rows = await asyncio.to_thread(read_raw, tenant)
                    else:
                        rows = await read_feed(core, org_id, None if side == "system" else member)
                    rates[side].append(total / (time.perf_counter() - began))
                    if side != "member":
                        assert rows == total, (side, rows, total)
            raw = statistics.median(rates["raw"])
            for side in ("raw", "system", "member"):
                rate = statistics.median(rates[side])
                print(f"{side:>7}: {rate:>10,.0f} rows/s  ({rate / raw:.0%} of raw)")
            ratios = [s / r for s, r in zip(rates["system"], rates["raw"], strict=True)]
            print(
                f"median per-round ratio system/raw: {statistics.median(ratios):.0%} (goal >= 70%)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main_async(args.changes, args.rounds))


if __name__ == "__main__":
    main()
