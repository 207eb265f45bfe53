"""Render results: a table per case for people, JSON for scripts."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
from typing import Any

import aiohttp

from bench.load import Result
from bench.runner import CaseResult, Options


def environment(driver: str, opts: Options) -> dict[str, Any]:
    """What the figures depend on: versions, CPUs, driver and load settings."""
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "aiohttp": aiohttp.__version__,
        "cpus": os.cpu_count(),
        "driver": driver,
        "connections": opts.connections,
        "rounds": opts.rounds,
        "seconds": opts.seconds,
    }


def header(env: dict[str, Any]) -> str:
    return (
        f"Python {env['python']}  SQLite {env['sqlite']}  aiohttp {env['aiohttp']}  "
        f"{env['cpus']} CPUs\n"
        f"driver {env['driver']}, {env['connections']} connections, "
        f"{env['rounds']} rounds x {env['seconds']} s per side, alternating"
    )


def _median(results: list[Result], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in results)


def _row(side: str, results: list[Result]) -> str:
    if not results:
        return f"  {side:<9} {0:>6} {'-':>10} {'-':>8} {'-':>8} {'-':>7}"
    errors = sum(r.errors for r in results)
    return (
        f"  {side:<9} {len(results):>6} {_median(results, 'rps'):>10,.0f} "
        f"{_median(results, 'p50_ms'):>8.2f} {_median(results, 'p99_ms'):>8.2f} {errors:>7}"
    )


def table(res: CaseResult) -> str:
    """One case: a row per side (medians over rounds) and the median ratio."""
    case = res.case
    lines = [
        f"{case.name}: {case.summary}",
        f"  {'side':<9} {'rounds':>6} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}",
        _row("baseline", res.baseline),
        _row("rhythm", res.rhythm),
    ]
    if res.ratio is None:
        lines.append(f"  rhythm {res.rhythm_error or 'not measured'}")
        lines.append(f"  ratio: n/a   goal >= {case.goal:.0%}   NOT RUN")
    else:
        verdict = "PASS" if res.ratio >= case.goal else "MISS"
        rounds = " ".join(f"{r:.2f}" for r in res.ratios)
        lines.append(
            f"  ratio rhythm/baseline: {res.ratio:.1%} (median of rounds: {rounds})"
            f"   goal >= {case.goal:.0%}   {verdict}"
        )
    return "\n".join(lines)


def as_json(env: dict[str, Any], results: list[CaseResult]) -> str:
    """Everything measured, every round, for scripts and later comparison."""

    def side(rs: list[Result]) -> list[dict[str, float]]:
        return [
            {
                "rps": r.rps,
                "p50_ms": r.p50_ms,
                "p99_ms": r.p99_ms,
                "requests": r.requests,
                "errors": r.errors,
                "seconds": r.seconds,
            }
            for r in rs
        ]

    cases = [
        {
            "case": r.case.name,
            "summary": r.case.summary,
            "goal": r.case.goal,
            "ratio": r.ratio,
            "ratios": r.ratios,
            "pass": None if r.ratio is None else r.ratio >= r.case.goal,
            "rhythm_error": r.rhythm_error,
            "baseline": side(r.baseline),
            "rhythm": side(r.rhythm),
        }
        for r in results
    ]
    return json.dumps({"environment": env, "cases": cases}, indent=2)
