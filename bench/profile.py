"""Profile Rhythm under one case's load: ``python -m bench.profile CASE [--seconds N]``.

Starts only the Rhythm side of a case, loads it with the case's request for
``--seconds`` while ``py-spy`` (``pip install py-spy``; not a project
dependency) samples every thread, and writes the raw collapsed stacks to
``--out`` (feed them to flamegraph.pl or speedscope). Use it to find where a
case's time goes before changing code; the figures themselves come from
``python -m bench run``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

import aiohttp

from bench.api import Api
from bench.cases import discover
from bench.load import pick_driver
from bench.servers import rhythm_server


async def profile(case_name: str, seconds: int, connections: int, out: Path) -> int:
    cases = discover()
    if case_name not in cases:
        print(f"unknown case {case_name!r}; known: {', '.join(sorted(cases))}", file=sys.stderr)
        return 2
    if shutil.which("py-spy") is None:
        print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    case = cases[case_name]
    driver = pick_driver("auto", connections, 1)
    with tempfile.TemporaryDirectory(prefix=f"rhythm-bench-profile-{case.name}-") as tmp:
        async with rhythm_server(Path(tmp)) as server:
            assert server.proc is not None
            async with aiohttp.ClientSession() as session:
                req = await case.rhythm_setup(Api(session, server.url))
            await driver.run(server.url, req, 1)  # warm up
            spy = await asyncio.create_subprocess_exec(
                "py-spy", "record", "--pid", str(server.proc.pid), "--duration", str(seconds),
                "--rate", "250", "--format", "raw", "--threads", "--output", str(out),
            )  # fmt: skip
            result = await driver.run(server.url, req, seconds)
            await spy.wait()
    print(f"{case.name}: {result.rps:,.0f} req/s under the profiler; stacks in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("case")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("profile.raw"))
    args = parser.parse_args(argv)
    return asyncio.run(profile(args.case, args.seconds, args.connections, args.out))


if __name__ == "__main__":
    sys.exit(main())
