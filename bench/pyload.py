"""Fallback load driver: N aiohttp client workers in this process."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

from bench.cases import Request
from bench.load import Result

BUCKET_US = 10  # histogram resolution; p50/p99 are reported in ms


class Histogram:
    """Latency counts in fixed 10 µs buckets: bounded memory, exact enough."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0

    def add(self, seconds: float) -> None:
        self.counts[int(seconds * 1e6) // BUCKET_US] += 1
        self.total += 1

    def percentile(self, pct: float) -> float:
        """The latency in ms at ``pct`` (0-100); 0.0 when empty."""
        rank, seen = pct / 100 * self.total, 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return (bucket + 0.5) * BUCKET_US / 1e3
        return 0.0


class PythonDriver:
    """Keeps ``connections`` requests in flight until the time is up.

    It shares the CPU with the servers, so figures read lower than wrk's.
    """

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self.name = "python aiohttp client"

    async def run(self, base_url: str, req: Request, seconds: float) -> Result:
        hist, errors = Histogram(), [0]
        connector = aiohttp.TCPConnector(limit=self.connections)
        async with aiohttp.ClientSession(base_url, connector=connector) as session:
            start = time.perf_counter()
            deadline = start + seconds
            workers = [
                self._worker(session, req, deadline, hist, errors, i)
                for i in range(self.connections)
            ]
            await asyncio.gather(*workers)
            elapsed = time.perf_counter() - start
        return Result(hist.total, errors[0], elapsed, hist.percentile(50), hist.percentile(99))

    @staticmethod
    async def _worker(
        session: aiohttp.ClientSession,
        req: Request,
        deadline: float,
        hist: Histogram,
        errors: list[int],
        worker: int,
    ) -> None:
        seq, headers = worker * 1_000_000, dict(req.headers)
        while (sent := time.perf_counter()) < deadline:
            seq += 1
            try:
                async with session.request(
                    req.method, req.path, headers=headers, data=req.render_body(seq)
                ) as resp:
                    await resp.read()
                    ok = resp.status == req.expect
            except aiohttp.ClientError:
                ok = False
            hist.add(time.perf_counter() - sent)
            errors[0] += not ok
