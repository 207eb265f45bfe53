"""Start-up of the CLI: process start to first output of `rhythm issue list` on a data
directory of N issues, against a bare `python -c pass` in the same rounds.

    .venv/bin/python -m bench.cases_cli_start --data-dir /tmp/rhythm-cli-100k --issues 100000

Builds the data directory with bench.gen (one project, CORE) when it has none, then
alternates the baseline and the command ROUNDS times and prints the median and p90 of
time-to-first-byte and of the whole run, and the slowest imports of one run
(`python -X importtime`). Goal (issue 16): <= 300 ms wall for `rhythm issue list`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ORG, PROJECT = "bench", "CORE"


def ensure_data(data_dir: Path, issues: int) -> None:
    if (data_dir / "_system.db").is_file():
        return
    print(f"building {data_dir} with {issues:,} issues (bench.gen) ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "bench.gen", "--data-dir", str(data_dir),
         "--issues", str(issues), "--projects", "1"],
        check=True,
    )  # fmt: skip


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(seconds to the first byte on stdout, seconds to exit, CPU seconds of the child).

    CPU time (user + system) hardly depends on how busy the machine is; wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None
    first = process.stdout.read(1)
    first_at = time.perf_counter() - start
    process.communicate()
    total = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0 or not first:
        raise SystemExit(f"{' '.join(argv)} failed with {process.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return first_at, total, cpu


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"{name:<34} median {statistics.median(values) * 1000:6.1f} ms   p90 {p90 * 1000:6.1f} ms"
    )


def import_profile(argv: list[str], env: dict[str, str], top: int = 12) -> list[str]:
    """The slowest cumulative imports of one run."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[1:]], capture_output=True, text=True, env=env
    )
    rows = []
    for line in run.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"  {us / 1000:7.1f} ms  {name}" for us, name in rows[:top]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_cli_start", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/rhythm-cli-100k"))
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    ensure_data(args.data_dir, args.issues)
    env = {**os.environ, "RHYTHM_CLI_CONTEXT": str(args.data_dir / "no-context.json")}
    # an installed `rhythm` runs from bytecode (pip compiles it; a checkout caches it on the
    # first run); PYTHONDONTWRITEBYTECODE=1 would recompile every module on every run
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "cli.main", "issue", "list", "-o", ORG, "-p", PROJECT,
               "-d", str(args.data_dir)]  # fmt: skip
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "rhythm issue list (50 of N)": command,
        "rhythm issue list --json": [*command, "--json"],
    }
    first: dict[str, list[float]] = {name: [] for name in cases}
    total: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for name, case in cases.items():  # warm the page cache and .pyc files
        timed(case if name != "python -c pass" else [*case[:2], "print(1)"], env)
    for _ in range(args.rounds):
        for name, case in cases.items():
            probe = case if name != "python -c pass" else [*case[:2], "print(1)"]
            a, b, c = timed(probe, env)
            first[name].append(a)
            total[name].append(b)
            cpu[name].append(c)
    load = os.getloadavg()[0]
    print(f"{args.rounds} rounds, data dir {args.data_dir} ({args.issues:,} issues), "
          f"load average {load:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    for name in cases:
        print(
            summary(name + " first byte", first[name])
            + f"   best {min(first[name]) * 1000:6.1f} ms"
        )
        print(
            summary(name + " whole run", total[name]) + f"   best {min(total[name]) * 1000:6.1f} ms"
        )
        print(summary(name + " CPU", cpu[name]))
    base = statistics.median(total["python -c pass"])
    ours = statistics.median(total["rhythm issue list (50 of N)"])
    print(f"rhythm issue list over the bare interpreter: +{(ours - base) * 1000:.1f} ms")
    print("slowest imports (cumulative) of one `rhythm issue list`:")
    print("\n".join(import_profile(command, env)))


if __name__ == "__main__":
    main()
