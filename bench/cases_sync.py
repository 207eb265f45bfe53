"""Offline sync, server side: pull, push and snapshot against plain baselines, same run.

    python -m bench.cases_sync --case pull --rounds 5
    python -m bench.cases_sync --case push --rounds 5
    python -m bench.cases_sync --case snapshot --issues 100000 --rounds 3

Everything runs in one process on 127.0.0.1: the real Rhythm app (`create_app`, a
real data dir) and a plain aiohttp + sqlite3 baseline on another port, and one
sequential HTTP client. Sides alternate each round (order rotating); the figure is
the median of per-round ratios. Each case is one function (`case_pull`,
`case_push`, `case_snapshot`) so the client-side cases (clone, local commands) can be
added next to them.

* pull: 10,000+ change rows read from seq 0 in pages of 1,000: `GET sync/pull` vs a
  baseline answering `SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT 1000` as
  a JSON list of objects. Goal >= 50 % of raw rows/s.
* push: 1,000 `issue.update` mutations in batches of 100 vs the same edits as 1,000
  `PATCH .../issues/{n}` requests, one at a time. Goal: faster than REST.
* snapshot: every issue of a 100,000-issue project: `GET sync/snapshot` pages
  (limit 500) vs a baseline streaming `SELECT * FROM issues WHERE project_id = ?` as
  NDJSON in one response. Goal >= 50 % of raw rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.api import PASSWORD
from bench.gen import EMAIL, generate, setup_org
from bench.servers import HOST, free_port
from tracker.domain.changes import Actor, Entity, Op
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services import feed
from tracker.services.changes import mutate_org
from tracker.services.imports import import_issues
from tracker.settings import Settings

SYNC = {"Rhythm-Sync": "protocol=1; schema=1"}


@dataclass
class Bench:
    """A running Rhythm app with the bench org, a raw baseline app, and a client session."""

    rhythm: str
    raw: str
    session: aiohttp.ClientSession
    headers: dict[str, str]
    org_id: str
    tenant: Path
    core: Any
    project_ids: list[str]


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, HOST, port).start()
    return runner, f"http://{HOST}:{port}"


def raw_app(tenant: Path) -> web.Application:
    """The baseline: plain aiohttp, one sqlite3 connection used from a worker thread."""
    conn = sqlite3.connect(tenant, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    lock = asyncio.Lock()

    def changes_after(seq: int) -> bytes:
        rows = conn.execute(
            "SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT 1000", (seq,)
        ).fetchall()
        items = [dict(row) for row in rows]
        for item in items:  # the JSON columns as JSON, like the sync pull answers them
            for name in ("old", "new", "meta"):
                item[name] = None if item[name] is None else json.loads(item[name])
        return json.dumps({"items": items}).encode()

    async def pull(request: web.Request) -> web.Response:
        seq = int(request.query["seq"])
        async with lock:
            body = await asyncio.to_thread(changes_after, seq)
        return web.Response(body=body, content_type="application/json")

    def issue_lines(project_id: str, after: str) -> tuple[bytes, str | None]:
        rows = conn.execute(
            "SELECT * FROM issues WHERE project_id = ? AND id > ? ORDER BY id LIMIT 2000",
            (project_id, after),
        ).fetchall()
        if not rows:
            return b"", None
        text = "".join(json.dumps(dict(row)) + "\n" for row in rows)
        return text.encode(), rows[-1]["id"]

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        after: str | None = ""
        while after is not None:
            async with lock:
                chunk, after = await asyncio.to_thread(issue_lines, request.query["project"], after)
            if chunk:
                await response.write(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/pull", pull)
    app.router.add_get("/stream", stream)
    app.on_cleanup.append(lambda _: asyncio.to_thread(conn.close))
    return app


@asynccontextmanager
async def bench(issues: int, extra_changes: int, **overrides: Any) -> AsyncIterator[Bench]:
    """A data dir with the bench org: `issues` imported into the first project, then
    `extra_changes` field updates through `mutate` (so the log has that many more rows)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", log_level="warning", **overrides)
        app = create_app(settings)
        runner, rhythm = await _serve(app)
        try:
            core = app[CORE]
            user_id, org_id, targets = await setup_org(core, 2)
            actor = Actor(user_id, "system")
            stream = generate(issues, [user_id], 7)
            while chunk := [issue for _, issue in zip(range(50_000), stream, strict=False)]:
                await import_issues(core, targets[0], actor, chunk)
            project_ids = [t.project.id for t in targets]
            for n in range(extra_changes // 2):

                def work(uow: Any, n: int = n) -> None:
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
            tenant = settings.data_dir / org_id / "tracker.db"
            raw_runner, raw = await _serve(raw_app(tenant))
            async with aiohttp.ClientSession() as session:
                r = await session.post(
                    f"{rhythm}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
                )
                token = (await r.json())["access_token"]
                headers = {"Authorization": f"Bearer {token}", **SYNC}
                try:
                    yield Bench(rhythm, raw, session, headers, org_id, tenant, core, project_ids)
                finally:
                    await raw_runner.cleanup()
        finally:
            await runner.cleanup()


async def register(b: Bench, scope: list[str]) -> tuple[str, str]:
    r = await b.session.post(
        f"{b.rhythm}/api/v1/orgs/bench/sync/clients",
        json={"scope": scope, "device": "bench"},
        headers=b.headers,
    )
    body = await r.json()
    assert r.status == 201, body
    return body["client_id"], body["epoch"]


async def rounds(
    count: int, sides: dict[str, Callable[[], Awaitable[float]]]
) -> dict[str, list[float]]:
    """Run each side once per round (order rotating); rates per side."""
    names = list(sides)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(count):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rates[name].append(await sides[name]())
    return rates


def report(title: str, unit: str, rates: dict[str, list[float]], goal: str) -> None:
    rhythm, base = rates["rhythm"], rates["baseline"]
    ratios = [a / b for a, b in zip(rhythm, base, strict=True)]
    print(
        f"{title}: Rhythm {statistics.median(rhythm):,.0f} {unit}, baseline "
        f"{statistics.median(base):,.0f} {unit}; median per-round ratio "
        f"{statistics.median(ratios):.0%} ({goal}); load average {os.getloadavg()[0]:.1f}"
    )


# --- cases --------------------------------------------------------------------------------


async def case_pull(rounds_n: int, changes: int) -> None:
    async with bench(issues=changes // 4, extra_changes=changes // 2) as b:
        total = await feed.head(b.core, b.org_id)
        client_id, epoch = await register(b, ["*"])
        print(f"pull: {total:,} change rows in the log")

        async def rhythm() -> float:
            began, cursor, rows = time.perf_counter(), f"{epoch}.0", 0
            while True:
                r = await b.session.get(
                    f"{b.rhythm}/api/v1/orgs/bench/sync/pull",
                    params={"client_id": client_id, "cursor": cursor},
                    headers=b.headers,
                )
                page = await r.json()
                rows += len(page["items"])
                cursor = page["cursor"]
                if not page["has_more"]:
                    break
            assert rows == total, (rows, total)
            return rows / (time.perf_counter() - began)

        async def baseline() -> float:
            began, seq, rows = time.perf_counter(), 0, 0
            while True:
                r = await b.session.get(f"{b.raw}/pull", params={"seq": str(seq)})
                items = (await r.json())["items"]
                if not items:
                    break
                rows += len(items)
                seq = items[-1]["seq"]
            return rows / (time.perf_counter() - began)

        report(
            "pull",
            "rows/s",
            await rounds(rounds_n, {"rhythm": rhythm, "baseline": baseline}),
            "goal >= 50%",
        )


async def case_push(rounds_n: int, mutations: int = 1000) -> None:
    async with bench(issues=1000, extra_changes=0) as b:
        client_id, _ = await register(b, ["*"])
        ids: list[tuple[str, int]] = []
        r = await b.session.get(
            f"{b.rhythm}/api/v1/orgs/bench/sync/snapshot",
            params={"client_id": client_id, "limit": "500"},
            headers=b.headers,
        )
        token = None
        while True:
            params = {"client_id": client_id, "limit": "500"}
            if token:
                params["page_token"] = token
            r = await b.session.get(
                f"{b.rhythm}/api/v1/orgs/bench/sync/snapshot", params=params, headers=b.headers
            )
            lines = [json.loads(line) for line in (await r.text()).splitlines()]
            ids += [
                (x["id"], x["data"]["number"]) for x in lines[1:-1] if x.get("entity") == "issue"
            ]
            token = lines[-1]["next_page_token"]
            if token is None:
                break
        ids = ids[:mutations]
        counter, round_no = 0, 0

        async def rhythm() -> float:
            nonlocal counter, round_no
            round_no += 1
            began = time.perf_counter()
            for start in range(0, mutations, 100):
                batch = []
                for issue_id, _ in ids[start : start + 100]:
                    counter += 1
                    batch.append(
                        {
                            "id": counter,
                            "name": "issue.update",
                            "v": 1,
                            "args": {"id": issue_id, "set": {"title": f"sync {round_no}"}},
                        }
                    )
                r = await b.session.post(
                    f"{b.rhythm}/api/v1/orgs/bench/sync/push",
                    json={"client_id": client_id, "mutations": batch},
                    headers=b.headers,
                )
                body = await r.json()
                assert r.status == 200 and all(x["status"] == "applied" for x in body["results"]), (
                    body
                )
            return mutations / (time.perf_counter() - began)

        async def baseline() -> float:  # the REST door, one edit per request
            nonlocal round_no
            round_no += 1
            began = time.perf_counter()
            for _, number in ids:
                r = await b.session.patch(
                    f"{b.rhythm}/api/v1/orgs/bench/projects/CORE/issues/{number}",
                    json={"title": f"rest {round_no}"},
                    headers=b.headers,
                )
                assert r.status == 200, await r.text()
            return mutations / (time.perf_counter() - began)

        report(
            "push",
            "mutations/s",
            await rounds(rounds_n, {"rhythm": rhythm, "baseline": baseline}),
            "baseline = REST one request each; goal > 100%",
        )


async def case_snapshot(rounds_n: int, issues: int) -> None:
    # the server's pages, not the per-user rate limit (the clone case keeps that)
    async with bench(issues=issues, extra_changes=0, rate_limit_rps=0) as b:
        project = b.project_ids[0]
        client_id, _ = await register(b, ["CORE"])
        print(f"snapshot: {issues:,} issues")

        async def rhythm() -> float:
            began, rows, token = time.perf_counter(), 0, None
            while True:
                params = {"client_id": client_id, "limit": "500"}
                if token:
                    params["page_token"] = token
                r = await b.session.get(
                    f"{b.rhythm}/api/v1/orgs/bench/sync/snapshot", params=params, headers=b.headers
                )
                text = await r.text()
                lines = text.splitlines()
                rows += sum(1 for line in lines if line.startswith('{"entity":"issue"'))
                token = json.loads(lines[-1])["next_page_token"]
                if token is None:
                    break
            assert rows == issues, (rows, issues)
            return rows / (time.perf_counter() - began)

        async def baseline() -> float:
            began, rows = time.perf_counter(), 0
            async with b.session.get(f"{b.raw}/stream", params={"project": project}) as r:
                async for _ in r.content:
                    rows += 1
            assert rows == issues, (rows, issues)
            return rows / (time.perf_counter() - began)

        report(
            "snapshot",
            "issues/s",
            await rounds(rounds_n, {"rhythm": rhythm, "baseline": baseline}),
            "goal >= 50%",
        )


async def _raw_clone(url: str, project: str, target: Path) -> int:
    """The baseline client: the raw NDJSON stream of the project's issues into a local
    sqlite3 file (one table, rows as JSON), in batches of 2,000."""
    target.unlink(missing_ok=True)
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE issues (id TEXT PRIMARY KEY, body TEXT)")
    rows, batch = 0, []
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/stream", params={"project": project}) as r,
    ):
        async for line in r.content:
            row = json.loads(line)
            batch.append((row["id"], json.dumps(row)))
            if len(batch) == 2000:
                conn.executemany("INSERT INTO issues VALUES (?, ?)", batch)
                rows, batch = rows + len(batch), []
    conn.executemany("INSERT INTO issues VALUES (?, ?)", batch)
    conn.commit()
    conn.close()
    return rows + len(batch)


async def case_clone(rounds_n: int, issues: int) -> None:
    """`rhythm clone bench/CORE` end to end, as a person runs it (its own process:
    register, snapshot pages, pull to the head, base and view written) vs the raw
    client (its own process too) inserting the same rows, streamed as NDJSON, into a
    local sqlite3 file. Goal >= 50 % of raw rows/s."""
    import subprocess
    import sys

    from tracker.replica.client import SyncClient

    async with bench(issues=issues, extra_changes=0) as b:
        print(f"clone: {issues:,} issues")
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "RHYTHM_HOME": home}
            os.environ["RHYTHM_HOME"] = home
            (await SyncClient.login(b.rhythm, EMAIL, PASSWORD)).save()
            sizes: dict[str, int] = {}

            async def timed(argv: list[str]) -> float:
                began = time.perf_counter()
                child = await asyncio.create_subprocess_exec(
                    *argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
                )
                _, err = await child.communicate()
                assert child.returncode == 0, err.decode()[-2000:]
                return issues / (time.perf_counter() - began)

            async def rhythm() -> float:
                rate = await timed([sys.executable, "-m", "cli.main", "clone", "bench/CORE",
                                    "--server", b.rhythm])  # fmt: skip
                replica = next(p for p in Path(home).glob("*/bench") if p.is_dir())
                sizes["rhythm"] = sum(f.stat().st_size for f in replica.rglob("*") if f.is_file())
                return rate

            async def baseline() -> float:
                target = Path(home) / "raw.db"
                rate = await timed([sys.executable, "-m", "bench.cases_sync", "--raw-client",
                                    b.raw, b.project_ids[0], str(target)])  # fmt: skip
                sizes["baseline"] = target.stat().st_size
                return rate

            rates = await rounds(rounds_n, {"rhythm": rhythm, "baseline": baseline})
            report("clone", "issues/s", rates, "goal >= 50%")
            print(f"clone bytes on disk: replica {sizes['rhythm']:,} (base + view + journal),"
                  f" raw {sizes['baseline']:,}")  # fmt: skip


async def case_local(rounds_n: int, issues: int) -> None:
    """`rhythm issue list`, `issue search`, `board` on a replica of a 100,000-issue project,
    offline (the server is stopped first), each a whole process run, wall time including
    process start, alternating with `python -c pass` and the same commands through typer
    (no cli/fast.py). Goal: each <= 150 ms."""
    import subprocess
    import sys

    from bench.cases_cli_start import import_profile, summary, timed
    from tracker.replica.client import SyncClient

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "RHYTHM_HOME": home, "RHYTHM_CLI_CONTEXT": f"{home}/ctx.json"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("RHYTHM_DATA_DIR", None)
        os.environ["RHYTHM_HOME"] = home
        # the clone's pages outrun the default 20 requests/s at 100,000 issues (429)
        async with bench(issues=issues, extra_changes=0, rate_limit_rps=1000.0) as b:
            (await SyncClient.login(b.rhythm, EMAIL, PASSWORD)).save()
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli.main", "clone", "bench/CORE", "--server", b.rhythm,
                env=env, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            assert await child.wait() == 0
        rhythm = [sys.executable, "-m", "cli.main"]
        typer = [sys.executable, "-c", "from cli.main import run; run()"]
        (view,) = Path(home).glob("*/bench/view")
        cases = {
            "python -c pass": [sys.executable, "-c", "print(1)"],
            "issue list, view as a data dir": [
                *rhythm,
                "issue",
                "list",
                "-d",
                str(view),
                "-o",
                "bench",
                "-p",
                "CORE",
                "--as",
                EMAIL,
            ],
            "rhythm issue list": [*rhythm, "issue", "list"],
            "rhythm issue search": [*rhythm, "issue", "search", "status:open sort:updated"],
            "rhythm board": [*rhythm, "board"],
            # the same through typer and the services (cli.main:run skips cli/fast.py)
            "typer: issue list": [*typer, "issue", "list"],
            "typer: issue search": [*typer, "issue", "search", "status:open sort:updated"],
            "typer: board": [*typer, "board"],
        }
        for case in cases.values():  # warm the page cache and .pyc files
            timed(case, env)
        whole: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds_n):
            for name, case in cases.items():
                whole[name].append(timed(case, env)[1])
        print(f"local commands on a replica of {issues:,} issues, {rounds_n} rounds, load"
              f" average {os.getloadavg()[0]:.1f} (goal <= 150 ms each, whole run)")  # fmt: skip
        for name in cases:
            print(summary(name, whole[name]) + f"   best {min(whole[name]) * 1000:6.1f} ms")
        for name in ("issue list", "issue search", "board"):  # median of per-round ratios
            fast, slow = whole[f"rhythm {name}"], whole[f"typer: {name}"]
            ratio = statistics.median(s / f for s, f in zip(slow, fast, strict=True))
            print(f"{name}: the typer path takes {ratio:.1f}x the fast path's time (same rounds)")
        print("slowest imports (cumulative) of one `rhythm issue list` on the replica:")
        print("\n".join(import_profile(cases["rhythm issue list"], env, top=8)))


CASES = ("pull", "push", "snapshot", "clone", "local")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, action="append")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--raw-client", nargs=3, metavar=("URL", "PROJECT", "FILE"),
                        help="(internal) the clone case's baseline client")  # fmt: skip
    args = parser.parse_args()
    if args.raw_client:
        url, project, target = args.raw_client
        asyncio.run(_raw_clone(url, project, Path(target)))
        return
    for case in args.case or CASES:
        if case == "pull":
            asyncio.run(case_pull(args.rounds, args.changes))
        elif case == "push":
            asyncio.run(case_push(args.rounds))
        elif case == "clone":
            asyncio.run(case_clone(args.rounds, args.issues))
        elif case == "local":
            asyncio.run(case_local(max(args.rounds, 9), args.issues))
        else:
            asyncio.run(case_snapshot(args.rounds, args.issues))


if __name__ == "__main__":
    main()
