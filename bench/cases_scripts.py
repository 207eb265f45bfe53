"""Automation scripts: run overhead on issue creation, and the sandbox's cost.

    python -m bench.cases_scripts --creates 1000 --rounds 3

In-process, on a fresh data dir (bench.gen.setup_org), with the real core and
its background services (the `scripts` feed consumer, the worker pool):

* latency: a trivial event script (`on_event("issue.created")` adding a tag)
  is enabled; N issues are created one after another through
  `issues.create_issue`; for each, the time from the create's COMMIT (the call
  returned) to the script's own change being committed (its batch published
  on the bus). p50 / p99. Goal: p50 <= 20 ms.
* throughput: N creates from 16 concurrent tasks, rounds alternating between
  the script enabled and disabled (same process, same file). Creates/s; the
  goal is enabled >= 70 % of disabled.
* sandbox: the same arithmetic loop in the hardened sandbox (fresh state,
  count hook, allow-listed env; `run_job` in this process) vs bare lupa
  (`lua54.LuaRuntime().execute`). The notes measured about 2.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lupa import lua54

from bench.gen import setup_org
from tracker.core import open_core
from tracker.domain.changes import Actor, ChangeBatch
from tracker.domain.models.issues import IssueCreate
from tracker.domain.models.scripts import ScriptIn, ScriptPatch
from tracker.scripting.sandbox import run_job
from tracker.services import issues, scripts
from tracker.services.runtime import Core
from tracker.services.script_triggers import ScriptEvents
from tracker.settings import Settings

TRIVIAL = 'on_event("issue.created", function(ctx) ctx.issue:add_tag("seen") end)'
LOOP = "local s = 0 for i = 1, %d do s = s + i %% 7 end return s"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(core: Core, access: Any, actor: Actor, creates: int) -> list[float]:
    """ms from each create's commit to the script's committed tag."""
    waiting: dict[str, asyncio.Future[float]] = {}

    def on_batch(batch: ChangeBatch) -> None:
        if str(batch.changes[0].origin) != "script":
            return
        for change in batch.changes:
            future = waiting.get(change.issue or "")
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    unsubscribe = core.events.subscribe(on_batch)
    out = []
    try:
        for n in range(creates):
            issue = await issues.create_issue(core, access, IssueCreate(title=f"l{n}"), actor)
            committed = time.perf_counter()
            future = waiting.setdefault(issue.id, asyncio.get_running_loop().create_future())
            done = await asyncio.wait_for(future, 30)
            out.append((done - committed) * 1000)
    finally:
        unsubscribe()
    return out


async def throughput(core: Core, access: Any, actor: Actor, creates: int) -> float:
    queue = iter(range(creates))

    async def worker() -> None:
        for n in queue:
            await issues.create_issue(core, access, IssueCreate(title=f"t{n}"), actor)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(16)))
    return creates / (time.perf_counter() - began)


async def drain(core: Core) -> None:
    consumer = next(s for s in core.background.running if isinstance(s, ScriptEvents))
    await asyncio.sleep(0.05)
    await consumer.idle()


async def overhead(settings: Settings, creates: int, rounds: int) -> None:
    async with open_core(settings) as core:
        user_id, _, (access, *_) = await setup_org(core, 1)
        actor = Actor(user_id, "api")
        script = await scripts.create_script(
            core, access, ScriptIn(name="trivial", source=TRIVIAL), actor
        )
        await latency(core, access, actor, 20)  # warm: workers spawned, caches filled
        lat = await latency(core, access, actor, creates)
        print(
            f"commit -> script's committed effect, {creates} creates: "
            f"p50 {statistics.median(lat):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms "
            f"(goal p50 <= 20 ms)"
        )
        on: list[float] = []
        off: list[float] = []
        for r in range(rounds * 2):
            enabled = r % 2 == 0
            await scripts.update_script(
                core, access, script.id, ScriptPatch(enabled=enabled), actor, None
            )
            rate = await throughput(core, access, actor, creates)
            (on if enabled else off).append(rate)
            await drain(core)
            print(f"  round {r + 1}: script {'enabled ' if enabled else 'disabled'} {rate:,.0f}/s")
        ratio = statistics.median(on) / statistics.median(off)
        print(
            f"creates/s with the script {statistics.median(on):,.0f} vs without "
            f"{statistics.median(off):,.0f}: {ratio:.0%} (goal >= 70%)"
        )


def sandbox_factor(iterations: int, rounds: int) -> None:
    code = LOOP % iterations
    bare, hardened = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        lua54.LuaRuntime().execute(code)
        bare.append(time.perf_counter() - began)
        job = {"mode": "compile", "source": code, "cpu_ms": 600_000, "memory_mb": 32}
        began = time.perf_counter()
        result = run_job(job, lambda *a: None)
        hardened.append(time.perf_counter() - began)
        assert result["status"] == "ok", result
    b, h = statistics.median(bare), statistics.median(hardened)
    print(
        f"{iterations:,}-step arithmetic loop: bare lupa {b * 1000:.0f} ms, hardened sandbox "
        f"{h * 1000:.0f} ms: {h / b:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loop", type=int, default=20_000_000)
    args = parser.parse_args()
    sandbox_factor(args.loop, 5)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), log_level="warning")
        asyncio.run(overhead(settings, args.creates, args.rounds))


if __name__ == "__main__":
    main()
