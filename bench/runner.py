"""Run a case: start both servers, then load them alternately round by round."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.api import Api
from bench.cases import Case, Request
from bench.load import Driver, Result, check
from bench.servers import Server, baseline_server, rhythm_missing, rhythm_server


@dataclass(frozen=True)
class Options:
    """How long and how hard to load each side."""

    rounds: int = 5
    seconds: int = 5
    warmup: int = 1
    connections: int = 32


@dataclass
class CaseResult:
    """Every round of one case; Rhythm's list stays empty when it could not run."""

    case: Case
    baseline: list[Result] = field(default_factory=list)
    rhythm: list[Result] = field(default_factory=list)
    rhythm_error: str | None = None

    @property
    def ratios(self) -> list[float]:
        """Rhythm/baseline req/s per round (each pair ran back to back)."""
        return [r.rps / b.rps for b, r in zip(self.baseline, self.rhythm, strict=False) if b.rps]

    @property
    def ratio(self) -> float | None:
        """The median round ratio: robust to this machine's run-to-run drift."""
        return statistics.median(self.ratios) if self.ratios else None


async def run_case(case: Case, opts: Options, driver: Driver) -> CaseResult:
    """Measure ``case``: baseline and Rhythm alternately, ``opts.rounds`` times."""
    result = CaseResult(case)
    with tempfile.TemporaryDirectory(prefix=f"rhythm-bench-{case.name}-") as tmp:
        async with AsyncExitStack() as stack:
            base = await stack.enter_async_context(baseline_server(case.baseline, Path(tmp)))
            await check(base.url, case.baseline_request)
            sides: list[tuple[Server, Request, list[Result]]]
            sides = [(base, case.baseline_request, result.baseline)]
            try:
                rhythm, req = await _start_rhythm(stack, case, Path(tmp))
                sides.append((rhythm, req, result.rhythm))
            except Exception as exc:  # reported beside the baseline figures
                result.rhythm_error = str(exc)
            await _load_rounds(case, opts, driver, sides)
    return result


async def _start_rhythm(stack: AsyncExitStack, case: Case, tmp: Path) -> tuple[Server, Request]:
    if reason := rhythm_missing():
        raise RuntimeError(reason)
    server = await stack.enter_async_context(rhythm_server(tmp))
    async with aiohttp.ClientSession() as session:
        req = await case.rhythm_setup(Api(session, server.url))
    await check(server.url, req)
    return server, req


async def _load_rounds(
    case: Case, opts: Options, driver: Driver, sides: list[tuple[Server, Request, list[Result]]]
) -> None:
    for server, req, _ in sides:
        if opts.warmup:
            await driver.run(server.url, req, opts.warmup)
    for n in range(1, opts.rounds + 1):
        line = [f"{case.name} round {n}/{opts.rounds}:"]
        for server, req, results in sides:  # A B A B …: drift hits both sides alike
            results.append(await driver.run(server.url, req, opts.seconds))
            line.append(f"{server.label.split()[0]} {results[-1].rps:,.0f} req/s")
            await asyncio.sleep(0.2)
        print("  ".join(line), file=sys.stderr, flush=True)
