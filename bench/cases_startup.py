"""Start-up with many tenants: time to ready, and to "caught up", 10,000 orgs vs 1 org.

    python -m bench.cases_startup [--orgs 10000] [--rounds 3] [--tree DIR]

Two data directories are made once. *one* holds a single org, `busy` (project WEB
with an event script that comments on every new issue); *many* holds the same org
plus `--orgs - 1` seeded orgs (copies of one migrated tenant, bench/tenant_seed.py).
Each round, for each directory in turn (one, many, one, many, ...):

1. with the server stopped, the CLI creates one issue in busy/WEB (`rhythm issue
   create`: a local core, no background services), so the script consumer is behind:
   work left by "the last run";
2. the server process starts; *ready* is its first 200 from /api/v1/health/ready,
   timed from the process start;
3. *caught up*: the start-up scan has read every tenant (`rhythm_startup_scan_running`
   0 on /metrics) and the pending issue carries its script's comment. Between polls a
   hot read (busy's project list) is timed while the pass runs, and 100 times after
   it: what the pass costs the tenants that serve requests.

Each round starts the 10,000-org directory twice: first without the memo the last pass
left (`cold`: every tenant is read, as on a first start or after a crash), then with it
(`many`: only the tenants written since are read — here `busy`, written by the CLI).

Notifications are on (RHYTHM_SMTP_URL points at a closed port; nobody is notified), so
the scan reads for all three services that need it. Printed: every round, the medians
and the median of the per-round ratios many/one, with the load average.

`--tree DIR` runs the server from another checkout (e.g. `git archive main | tar -x -C
DIR`) for a before/after figure: the server is then imported from DIR (it is the
process's working directory, first on sys.path). A tree without the scan gauge counts
as caught up when the comment is there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.api import PASSWORD, Api
from bench.servers import HOST, ROOT, free_port
from bench.tenant_seed import seed

MEMO_FILE = "tenant-scan.json"  # tracker/services/scan_memo.py (a --tree may predate it)

EMAIL = "startup-bench@example.com"
WELCOME = 'on_event("issue.created", function(ctx) ctx.issue:add_comment("welcome") end)'
READY = "/api/v1/health/ready"
POLL = 0.02  # seconds between polls: well under the figures measured
ENV = {
    "RHYTHM_LOG_LEVEL": "warning",
    "PYTHONUNBUFFERED": "1",
    "RHYTHM_SIGNUPS_PER_ADDRESS": "0",
    "RHYTHM_MAX_ORGS_PER_USER": "0",
    "RHYTHM_RATE_LIMIT_RPS": "0",
    "RHYTHM_MAIL_FROM": "rhythm@example.com",
}


@dataclass
class Side:
    label: str
    data: Path
    log: Path
    #: start without the memo of the last pass (tenant-scan.json): every tenant is read
    forget: bool = False
    ready: list[float] = field(default_factory=list)
    caught_up: list[float] = field(default_factory=list)
    #: latency (s) of a hot read (busy's project list) while the pass runs / after it
    during: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)


class Process:
    """`rhythm serve` on a data dir, from `tree`; started and stopped by hand."""

    def __init__(self, tree: Path, data: Path, log: Path, smtp_port: int) -> None:
        self.tree, self.data, self.log = tree, data, log
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {**os.environ, **ENV, "RHYTHM_SMTP_URL": f"smtp://{HOST}:{smtp_port}"}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        argv = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(self.data),
                "--host", HOST, "--port", str(self.port)]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, cwd=self.tree, env=self.env, stdout=out, stderr=out
            )

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 60.0)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"server exited {self.proc.returncode}:\n" + "\n".join(tail))


async def wait_for(check: object, proc: Process, timeout: float = 900.0) -> None:
    """Poll `check()` (an async callable returning bool) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            if await check():  # type: ignore[operator]
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(POLL)
    raise RuntimeError(f"timed out after {timeout:.0f} s")


async def make_dir(tree: Path, tmp: Path, label: str, extra_orgs: int, smtp_port: int) -> Side:
    """A data dir with the busy org (project, script) and `extra_orgs` seeded orgs."""
    side = Side(label, tmp / f"{label}-data", tmp / f"{label}.log")
    side.data.mkdir()
    proc = Process(tree, side.data, side.log, smtp_port)
    await proc.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, proc.url)

            async def up() -> bool:
                async with session.get(proc.url + READY) as resp:
                    return resp.status == 200

            await wait_for(up, proc, 120)
            user = {"email": EMAIL, "password": PASSWORD}
            await api.call("POST", "/api/v1/auth/register", json=user, expect=201)
            token = (await api.call("POST", "/api/v1/auth/login", json=user))["access_token"]
            org = {"name": "Busy", "slug": "busy"}
            await api.call("POST", "/api/v1/orgs", json=org, token=token, expect=201)
            project = {"name": "Web", "key": "WEB"}
            await api.call("POST", "/api/v1/orgs/busy/projects", json=project, token=token,
                           expect=201)  # fmt: skip
            script = {"name": "welcome", "source": WELCOME}
            await api.call("POST", "/api/v1/orgs/busy/projects/WEB/scripts", json=script,
                           token=token, expect=201)  # fmt: skip
    finally:
        await proc.stop()
    if extra_orgs:
        began = time.perf_counter()
        await seed(side.data, extra_orgs, tmp / f"{label}-work")
        print(f"{label}: {extra_orgs} orgs seeded in {time.perf_counter() - began:.0f} s",
              flush=True)  # fmt: skip
    return side


async def pending_issue(tree: Path, side: Side, title: str) -> int:
    """One issue created by the CLI while the server is down; its number."""
    argv = [sys.executable, "-m", "cli.main", "issue", "create", title, "--org", "busy",
            "--project", "WEB", "--as", EMAIL, "--data-dir", str(side.data), "--quiet"]  # fmt: skip
    env = {**os.environ, **ENV}
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=tree, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"issue create failed: {err.decode()[-500:]}")
    key = out.decode().split()[0]  # WEB-7
    return int(key.rsplit("-", 1)[1])


async def one_start(tree: Path, side: Side, number: int, smtp_port: int) -> tuple[float, float]:
    """Start the server on `side`; (seconds to ready, seconds to caught up)."""
    proc = Process(tree, side.data, side.log, smtp_port)
    if side.forget:
        (side.data / MEMO_FILE).unlink(missing_ok=True)
    began = time.perf_counter()
    await proc.start()
    try:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                async with session.get(proc.url + READY) as resp:
                    return resp.status == 200

            await wait_for(ready, proc)
            ready_s = time.perf_counter() - began
            user = {"email": EMAIL, "password": PASSWORD}
            async with session.post(proc.url + "/api/v1/auth/login", json=user) as resp:
                token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            comments = f"{proc.url}/api/v1/orgs/busy/projects/WEB/issues/{number}/comments"

            hot = f"{proc.url}/api/v1/orgs/busy/projects"

            async def hot_read(into: list[float]) -> None:
                sent = time.perf_counter()
                async with session.get(hot, headers=headers) as resp:
                    await resp.read()
                into.append(time.perf_counter() - sent)

            async def caught_up() -> bool:
                async with session.get(proc.url + "/metrics") as resp:
                    text = await resp.text()
                if any(
                    line.startswith("rhythm_startup_scan_running 1") for line in text.splitlines()
                ):
                    await hot_read(side.during)
                    return False  # (a tree without the gauge: the comment alone decides)
                async with session.get(comments, headers=headers) as resp:
                    body = await resp.json()
                return any(c["body"] == "welcome" for c in body.get("items", []))

            await wait_for(caught_up, proc)
            caught_s = time.perf_counter() - began
            for _ in range(100):
                await hot_read(side.after)
                await asyncio.sleep(POLL)
            return ready_s, caught_s
    finally:
        await proc.stop()


def _summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    median = statistics.median(ordered)
    return f"median {median * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms (n={len(ordered)})"


async def run(args: argparse.Namespace) -> int:
    tree = Path(args.tree).resolve() if args.tree else ROOT
    smtp_port = free_port()  # nothing listens there
    with tempfile.TemporaryDirectory(prefix="rhythm-startup-") as tmp_name:
        tmp = Path(tmp_name)
        one = await make_dir(tree, tmp, "one", 0, smtp_port)
        cold = await make_dir(tree, tmp, "many", args.orgs - 1, smtp_port)
        cold.label, cold.forget = "cold", True
        many = Side("many", cold.data, cold.log)  # the same dir, with the last pass's memo
        print(f"server tree: {tree}; load {os.getloadavg()[0]:.1f}", flush=True)
        for round_no in range(1, args.rounds + 1):
            for side in (one, cold, many):
                number = await pending_issue(tree, side, f"pending {round_no}")
                ready_s, caught_s = await one_start(tree, side, number, smtp_port)
                side.ready.append(ready_s)
                side.caught_up.append(caught_s)
                print(f"round {round_no} {side.label:>4}: ready {ready_s:6.2f} s, caught up "
                      f"{caught_s:6.2f} s, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        med = statistics.median
        print(f"\nmedian over {args.rounds} rounds, load {os.getloadavg()[0]:.1f}:")
        print(
            f"  1 org:       ready {med(one.ready):6.2f} s, caught up {med(one.caught_up):6.2f} s"
        )
        for side, what in ((cold, "no memo, every tenant read"), (many, "with the memo")):
            ratio_ready = med(m / o for m, o in zip(side.ready, one.ready, strict=True))
            ratio_caught = med(m / o for m, o in zip(side.caught_up, one.caught_up, strict=True))
            print(f"  {args.orgs} orgs, {what}: ready {med(side.ready):6.2f} s, caught up "
                  f"{med(side.caught_up):6.2f} s; ratio to 1 org (median of per-round "
                  f"ratios): ready {ratio_ready:.2f}, caught up {ratio_caught:.2f}")  # fmt: skip
        if cold.during:
            print(f"  hot read (busy's projects) with {args.orgs} orgs: while the pass runs "
                  f"{_summary(cold.during)}; after it {_summary(cold.after)}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_startup", description=__doc__)
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tree", default=None, help="run the server from this checkout")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
