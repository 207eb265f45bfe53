"""``python -m bench run [case ...]`` and ``python -m bench list``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench.cases import discover
from bench.load import pick_driver
from bench.report import as_json, environment, header, table
from bench.runner import CaseResult, Options, run_case


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the cases")
    run = sub.add_parser("run", help="run cases (all when none named)")
    run.add_argument("cases", nargs="*", metavar="case")
    run.add_argument("--rounds", type=int, default=5, help="A/B rounds per case (5)")
    run.add_argument("--seconds", type=int, default=5, help="load time per side per round (5)")
    run.add_argument("--warmup", type=int, default=1, help="untimed seconds per side first (1)")
    run.add_argument("--connections", type=int, default=32, help="concurrent connections (32)")
    run.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    run.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    run.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    cases = discover()
    unknown = [n for n in args.cases if n not in cases]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; have {', '.join(cases)}", file=sys.stderr)
        return 2
    opts = Options(args.rounds, args.seconds, args.warmup, args.connections)
    driver = pick_driver(args.driver, args.connections, args.threads)
    env = environment(driver.name, opts)
    if not args.json:
        print(header(env), flush=True)
    results: list[CaseResult] = []
    for name in args.cases or list(cases):
        results.append(await run_case(cases[name], opts, driver))
        if not args.json:
            print("\n" + table(results[-1]), flush=True)
    if args.json:
        print(as_json(env, results))
    # A MISS is a finding, not a failure (this machine drifts); a side that
    # could not run at all is.
    return 2 if any(r.rhythm_error for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "list":
        for case in discover().values():
            print(f"{case.name:<10} goal >= {case.goal:.0%}  {case.summary}")
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
