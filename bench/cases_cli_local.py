"""Local commands on a replica, on a terminal and piped: `rhythm issue list`, `issue search`,
`board` on a 100,000-issue replica (issue 17: each <= 150 ms wall, process start included).

    .venv/bin/python -m bench.cases_cli_local --home /tmp/rhythm-local-100k --rounds 9

Builds the replica once under --home (a server with bench.gen's issues, `rhythm clone`,
server stopped; kept for the next run). Each round runs, alternating, every command as a
whole process: piped, on a pseudo-terminal (120 columns), with `--json`, and through the
typer path on the terminal (what a terminal got before cli/render.py); beside them
`python -c pass` and plain sqlite3 doing the same query in its own process. Prints the
median and best of each, its CPU time (user + system: hardly moved by the box's load,
where wall time is), and the median of per-round ratios. `--before DIR` adds another
checkout's fast path to the same rounds (a change measured before/after in one run).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import resource
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from bench.cases_cli_start import import_profile

COLUMNS = 120
COMMANDS = {
    "issue list": ["issue", "list"],
    "issue search": ["issue", "search", "status:open sort:updated"],
    "board": ["board"],
}
#: Plain sqlite3 in its own process, the same rows each command prints (argv[1]: the view's
#: tenant database; list: a page of 50 + 1; search: open issues by update time, 20 + 1;
#: board: each stage's count and first 20 cards by rank).
_RAW = {
    "issue list": """
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = c.execute("SELECT 'CORE-' || i.number, s.name, i.priority, i.type, i.title, i.updated_at"
    " FROM issues i JOIN stages s ON s.id = i.stage_id WHERE i.deleted_at IS NULL"
    " ORDER BY i.number DESC LIMIT 51").fetchall()
sys.stdout.write("".join("\\t".join(map(str, r)) + "\\n" for r in rows))
""",
    "issue search": """
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = c.execute("SELECT 'CORE-' || i.number, s.name, i.priority, i.type, i.title, i.updated_at"
    " FROM issues i JOIN stages s ON s.id = i.stage_id WHERE i.deleted_at IS NULL"
    " AND s.name = 'Open' COLLATE NOCASE ORDER BY i.updated_at DESC LIMIT 21").fetchall()
sys.stdout.write("".join("\\t".join(map(str, r)) + "\\n" for r in rows))
""",
    "board": """
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
out = []
stages = c.execute("SELECT id, name, project_id FROM stages ORDER BY position").fetchall()
for sid, name, pid in stages:
    (n,) = c.execute("SELECT live FROM stage_counts WHERE stage_id = ?", (sid,)).fetchone()
    cards = c.execute("SELECT number, title FROM issues WHERE project_id = ? AND stage_id = ?"
                      " AND deleted_at IS NULL ORDER BY rank LIMIT 20", (pid, sid)).fetchall()
    out.append(f"{name} ({n})\\t" + "\\t".join(f"CORE-{a} {b}" for a, b in cards))
sys.stdout.write("\\n".join(out) + "\\n")
""",
}


def run_piped(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, cwd=cwd)
    took = time.perf_counter() - start
    if done.returncode != 0 or not done.stdout:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return took


def run_on_terminal(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Whole run with stdout on a pseudo-terminal of COLUMNS columns, its output drained."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, COLUMNS, 0, 0))
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env, cwd=cwd)  # fmt: skip
    os.close(follower)
    size = 0
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child is gone
            break
        if not chunk:
            break
        size += len(chunk)
    _, err = child.communicate()
    took = time.perf_counter() - start
    os.close(leader)
    if child.returncode != 0 or not size:
        raise SystemExit(f"{' '.join(argv)} failed: {err.decode()[-500:]}")
    return took


def ensure_replica(home: Path, issues: int) -> Path:
    """The replica's view under `home` (cloned from a bench server the first time)."""
    found = list(home.glob("*/bench/view"))
    if found:
        return found[0]
    from bench.cases_sync import EMAIL, PASSWORD, bench
    from tracker.replica.client import SyncClient

    home.mkdir(parents=True, exist_ok=True)
    env = environment(home)
    os.environ["RHYTHM_HOME"] = str(home)

    async def clone() -> None:
        print(f"building a replica of {issues:,} issues under {home} ...", flush=True)
        # the clone's pages outrun the default 20 requests/s at 100,000 issues (429)
        async with bench(issues=issues, extra_changes=0, rate_limit_rps=1000.0) as b:
            (await SyncClient.login(b.rhythm, EMAIL, PASSWORD)).save()
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli.main", "clone", "bench/CORE", "--server", b.rhythm,
                env=env, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            assert await child.wait() == 0

    asyncio.run(clone())
    (view,) = home.glob("*/bench/view")
    return view


def environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "RHYTHM_HOME": str(home), "RHYTHM_CLI_CONTEXT": f"{home}/ctx.json",
           "TERM": "xterm-256color"}  # fmt: skip
    for name in ("PYTHONDONTWRITEBYTECODE", "RHYTHM_DATA_DIR", "RHYTHM_REPLICA", "COLUMNS",
                 "NO_COLOR", "RHYTHM_ORG", "RHYTHM_PROJECT", "RHYTHM_AS"):  # fmt: skip
        env.pop(name, None)
    return env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_cli_local", description=__doc__)
    parser.add_argument("--home", type=Path, default=Path("/tmp/rhythm-local-100k"))
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--before", type=Path, default=None,
        help="Another checkout's code (e.g. `git archive main cli tracker | tar -x -C DIR`):"
        " its fast path runs in the same rounds (`python -m cli.main` from DIR), and the"
        " per-round ratio before/after is printed.",
    )  # fmt: skip
    args = parser.parse_args(argv)
    view = ensure_replica(args.home, args.issues)
    (tenant,) = view.glob("*/tracker.db")
    env = environment(args.home)
    rhythm = [sys.executable, "-m", "cli.main"]
    typer = [sys.executable, "-c", "from cli.main import run; run()"]
    cases: dict[str, tuple[str, list[str], Path | None]] = {
        "python -c pass": ("pipe", [sys.executable, "-c", "print(1)"], None)
    }
    for name, words in COMMANDS.items():
        cases[f"sqlite3: {name}"] = (
            "pipe", [sys.executable, "-c", _RAW[name], str(tenant)], None
        )  # fmt: skip
        cases[f"{name}, piped"] = ("pipe", [*rhythm, *words], None)
        cases[f"{name}, terminal"] = ("tty", [*rhythm, *words], None)
        cases[f"{name} --json"] = ("pipe", [*rhythm, *words, "--json"], None)
        cases[f"typer: {name}, terminal"] = ("tty", [*typer, *words], None)
        if args.before is not None:
            cases[f"before: {name}, terminal"] = ("tty", [*rhythm, *words], args.before)
            cases[f"before: {name} --json"] = ("pipe", [*rhythm, *words, "--json"], args.before)
    runners = {"pipe": run_piped, "tty": run_on_terminal}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for kind, argv_, cwd in cases.values():  # warm the page cache and .pyc files
        runners[kind](argv_, env, cwd)
    took: dict[str, list[float]] = {name: [] for name in cases}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, (kind, argv_, cwd) in cases.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            took[name].append(runners[kind](argv_, env, cwd))
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        load.append(os.getloadavg()[0])
    print(f"local commands on a replica of {args.issues:,} issues, {args.rounds} rounds,"
          f" load average {min(load):.1f}-{max(load):.1f}; terminal = a pty of {COLUMNS}"
          " columns (goal <= 150 ms each, whole run)")  # fmt: skip
    for name, values in took.items():
        print(f"  {name:<34} median {statistics.median(values) * 1000:6.1f} ms"
              f"   best {min(values) * 1000:6.1f} ms"
              f"   CPU median {statistics.median(cpu[name]) * 1000:6.1f} ms")  # fmt: skip
    base = took["python -c pass"]
    for name in COMMANDS:  # median of per-round ratios, same rounds
        fast = took[f"{name}, terminal"]
        slow = took[f"typer: {name}, terminal"]
        raw = took[f"sqlite3: {name}"]
        print(f"  {name}: typer on a terminal / fast on a terminal"
              f" {statistics.median(s / f for s, f in zip(slow, fast, strict=True)):.1f}x;"
              f" fast on a terminal / plain sqlite3"
              f" {statistics.median(f / r for f, r in zip(fast, raw, strict=True)):.2f}x;"
              f" minus python start-up"
              f" {statistics.median((f - b) * 1000 for f, b in zip(fast, base, strict=True)):.0f}"
              " ms")  # fmt: skip
    for name in COMMANDS if args.before is not None else ():
        for how in (", terminal", " --json"):
            old, new = took[f"before: {name}{how}"], took[f"{name}{how}"]
            old_cpu, new_cpu = cpu[f"before: {name}{how}"], cpu[f"{name}{how}"]
            print(f"  {name}{how}: before / now"
                  f" {statistics.median(o / n for o, n in zip(old, new, strict=True)):.3f}x,"
                  f" median difference"
                  f" {statistics.median((o - n) * 1000 for o, n in zip(old, new, strict=True)):.1f}"
                  f" ms wall, CPU {statistics.median(old_cpu) * 1000:.1f} ->"
                  f" {statistics.median(new_cpu) * 1000:.1f} ms")  # fmt: skip
    print("slowest imports (cumulative) of one `rhythm issue list`, piped:")
    print("\n".join(import_profile([*rhythm, *COMMANDS["issue list"]], env, top=8)))


if __name__ == "__main__":
    main()
