"""Boards: the Kanban board of a 100,000-issue project, and card moves.

Two parts, as in cases_tenants.py:

* the harness case ``board`` (``python -m bench run board``): plain aiohttp +
  sqlite3 serving the same board (counts, 200 rows per column, json.dumps) vs
  ``GET .../board?limit=200`` on 2,000 issues made through the API (the harness
  cannot seed 100k issues into a server it starts itself);
* ``python -m bench.cases_boards [--issues 100000]`` — the issue's benchmark: one
  project with N issues over 10 stages (bulk import), then in the same run:
  the raw grouped SQL (count by stage) and the raw board SQL (counts + one
  LIMIT-200 range scan per column + assignees) timed on the tenant's own
  thread, the board service with JSON serialisation (server-side), the board
  over HTTP from a real server on 127.0.0.1, and card moves (PATCH status +
  before) over HTTP. Goals: board p50 <= 20 ms, p99 <= 50 ms server-side and
  within 2x of raw; a card move <= 5 ms p50.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.api import PASSWORD, Api, register_and_login
from bench.baselines import baseline
from bench.cases import Request, case
from tracker.core import open_core
from tracker.domain.changes import Actor
from tracker.domain.ids import iso
from tracker.domain.models.accounts import RegisterIn
from tracker.domain.models.orgs import OrgIn, ProjectIn
from tracker.domain.models.workflow import BoardQuery, StageCategoryName, StageIn
from tracker.domain.permissions import OrgRole, ProjectRole
from tracker.http.app import create_app
from tracker.services import accounts, boards, orgs, projects, workflow
from tracker.services.access import OrgAccess, OrgRef, ProjectAccess, ProjectRef
from tracker.services.accounts import Principal
from tracker.services.imports import ImportIssue, import_issues
from tracker.settings import Settings

EMAIL = "board-bench@example.com"
EXTRA_STAGES: tuple[tuple[str, StageCategoryName], ...] = (
    ("Triage", "todo"), ("Ready", "todo"), ("Design", "in_progress"),
    ("Review", "in_progress"), ("QA", "in_progress"), ("Released", "done"),
)  # fmt: skip
SHOWN = 200
GOALS = {"board_p50": 20.0, "board_p99": 50.0, "ratio": 2.0, "move_p50": 5.0}


BOARD_ISSUES = 2_000
BOARD_COLUMNS = ("Open", "In Progress", "Resolved", "Closed")


@baseline("sqlite_board")
def sqlite_board(db_path: Path) -> web.Application:
    """GET / -> the same board from plain sqlite3: counts, 200 rows per column, json.dumps."""
    conn = sqlite3.connect(db_path, check_same_thread=False)
    conn.executescript(
        "PRAGMA journal_mode=WAL; DROP TABLE IF EXISTS issues;"
        "CREATE TABLE issues (id TEXT, number INTEGER, title TEXT, type TEXT, priority TEXT,"
        " stage TEXT, estimate INTEGER, rank TEXT);"
        "CREATE INDEX board ON issues(stage, rank);"
    )
    conn.executemany(
        "INSERT INTO issues VALUES (?, ?, ?, 'task', 'normal', ?, NULL, ?)",
        [(f"id-{n}", n, f"card {n}", BOARD_COLUMNS[n % 4], f"a{n:06d}")
         for n in range(BOARD_ISSUES)],
    )  # fmt: skip
    conn.commit()
    names = ("id", "number", "title", "type", "priority", "stage_id", "estimate", "rank")

    async def handle(request: web.Request) -> web.Response:
        counts = dict(conn.execute("SELECT stage, count(*) FROM issues GROUP BY stage"))
        columns = []
        for stage in BOARD_COLUMNS:
            rows = conn.execute("SELECT * FROM issues WHERE stage = ? ORDER BY rank LIMIT ?",
                                (stage, SHOWN)).fetchall()  # fmt: skip
            items = [{**dict(zip(names, r, strict=True)), "key": f"WEB-{r[1]}", "assignees": []}
                     for r in rows]  # fmt: skip
            columns.append({"stage": {"name": stage}, "count": counts.get(stage, 0),
                            "items": items})  # fmt: skip
        return web.json_response({"columns": columns})

    app = web.Application()
    app.router.add_get("/", handle)
    return app


@case("board", baseline="sqlite_board", request=Request("GET", "/"), goal=0.50)
async def board_case(api: Api) -> Request:
    """plain aiohttp + sqlite3 board vs GET .../board?limit=200 (2,000 issues, 4 columns)"""
    token = await register_and_login(api)
    org = await api.call("POST", "/api/v1/orgs", json={"name": "Bench"}, token=token, expect=201)
    base = f"/api/v1/orgs/{org['slug']}/projects"
    await api.call("POST", base, json={"name": "Web", "key": "WEB"}, token=token, expect=201)
    bodies = iter(
        {"title": f"card {n}", "status": BOARD_COLUMNS[n % 4]} for n in range(BOARD_ISSUES)
    )

    async def worker() -> None:
        for body in bodies:
            await api.call("POST", f"{base}/WEB/issues", json=body, token=token, expect=201)

    await asyncio.gather(*(worker() for _ in range(8)))
    auth = {"Authorization": f"Bearer {token}"}
    return Request("GET", f"{base}/WEB/board?limit={SHOWN}", auth)


# --- the 100k board ----------------------------------------------------------------------------


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def seed(settings: Settings, count: int) -> tuple[str, ProjectAccess]:
    """User, org, project BOARD with 10 stages and `count` issues (bulk import)."""
    async with open_core(settings, background=False) as core:
        user = await accounts.register(core, RegisterIn(email=EMAIL, password=PASSWORD))
        actor = Actor(user.id, "system")
        org = await orgs.create_org(core, Principal(user.id), OrgIn(name="Board", slug="board"),
                                    actor)  # fmt: skip
        org_ref = OrgRef(org.id, org.slug, org.name, OrgRole.OWNER)
        data = ProjectIn(name="Board", key="BOARD")
        made = await projects.create_project(core, OrgAccess(user.id, org_ref), data, actor)
        project = ProjectRef(made.id, made.key, made.name, "org", ProjectRole.ADMIN, {})
        access = ProjectAccess(user.id, org_ref, project)
        for name, category in EXTRA_STAGES:
            await workflow.create_stage(core, access, StageIn(name=name, category=category), actor)
        stages = [(s.name, s.category) for s in await workflow.list_stages(core, access)]
        rng, start = random.Random(6), datetime(2024, 1, 1, tzinfo=UTC)
        began = time.perf_counter()
        await import_issues(core, access, actor, (
            _issue(rng, user.id, stages, start + timedelta(minutes=n)) for n in range(count)
        ))  # fmt: skip
        print(f"seeded {count:,} issues in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        return org.id, access


def _issue(
    rng: random.Random,
    reporter: str,
    stages: list[tuple[str, StageCategoryName]],
    created: datetime,
) -> ImportIssue:
    name, category = rng.choice(stages)
    when = iso(created)
    return ImportIssue(
        title=f"Card {rng.randrange(1 << 30):x} needs work", reporter=reporter, created_at=when,
        updated_at=when, stage=name, priority=rng.choice(("normal", "major", "minor")),
        resolved_at=when if category == "done" else None,
    )  # fmt: skip


def raw_board(conn: sqlite3.Connection, project_id: str) -> int:
    """What the board costs in SQL alone: counts, 200 cards per column, their assignees."""
    stages = conn.execute(
        "SELECT id FROM stages WHERE project_id = ? ORDER BY position", (project_id,)
    ).fetchall()
    conn.execute(
        "SELECT stage_id, count(*) FROM issues WHERE project_id = ? AND deleted_at IS NULL "
        "GROUP BY stage_id", (project_id,),
    ).fetchall()  # fmt: skip
    ids: list[str] = []
    for (stage_id,) in stages:
        rows = conn.execute(
            "SELECT id, number, title, type, priority, stage_id, estimate, rank FROM issues "
            "WHERE project_id = ? AND stage_id = ? AND deleted_at IS NULL ORDER BY rank LIMIT ?",
            (project_id, stage_id, SHOWN),
        ).fetchall()
        ids += [r[0] for r in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        conn.execute(
            f"SELECT issue_id, user_id FROM issue_assignees WHERE issue_id IN "
            f"({','.join('?' * len(chunk))})", chunk,
        ).fetchall()  # fmt: skip
    return len(ids)


def raw_count_by_stage(conn: sqlite3.Connection, project_id: str) -> None:
    conn.execute(
        "SELECT stage_id, count(*) FROM issues WHERE project_id = ? AND deleted_at IS NULL "
        "GROUP BY stage_id", (project_id,),
    ).fetchall()  # fmt: skip


async def in_process(settings: Settings, org_id: str, access: ProjectAccess, rounds: int) -> dict:
    """Raw SQL on the tenant's thread, then the service (+ JSON) the handler runs."""
    async with open_core(settings, background=False) as core:
        assert access.project is not None
        pid = access.project.id
        async with core.tenants.lease(org_id) as db:
            await db.read(lambda conn: raw_board(conn, pid))  # warm the cache
            grouped = await db.read(lambda c: timed(lambda: raw_count_by_stage(c, pid), rounds))
            board_sql = await db.read(lambda c: timed(lambda: raw_board(c, pid), rounds))
        query, service = BoardQuery(limit=SHOWN), []
        for _ in range(rounds):
            began = time.perf_counter()
            await boards.project_board_json(core, access, query)
            service.append((time.perf_counter() - began) * 1000)
        return {"raw count by stage": grouped, "raw board SQL": board_sql,
                "board service (JSON)": service}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def over_http(settings: Settings, rounds: int, moves: int) -> dict:
    """The board and card moves through a real server on 127.0.0.1 (sequential requests)."""
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with aiohttp.ClientSession() as session:
            login = {"email": EMAIL, "password": PASSWORD}
            async with session.post(f"{base}/auth/login", json=login) as resp:
                token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            url = f"{base}/orgs/board/projects/BOARD"
            board_ms = []
            for _ in range(rounds):
                began = time.perf_counter()
                async with session.get(f"{url}/board?limit={SHOWN}", headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200
                board_ms.append((time.perf_counter() - began) * 1000)
            async with session.get(f"{url}/board?limit={SHOWN}", headers=headers) as resp:
                columns = (await resp.json())["columns"]
            move_ms = await _moves(session, url, headers, columns, moves)
        return {"board over HTTP": board_ms, "card move over HTTP": move_ms}
    finally:
        await runner.cleanup()


async def _moves(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], columns: list, count: int
) -> list[float]:
    """PATCH status + before: a random shown card above a random card of another column."""
    rng, samples = random.Random(7), []
    for _ in range(count):
        source, target = rng.sample([c for c in columns if len(c["items"]) > 2], 2)
        card = source["items"].pop(rng.randrange(len(source["items"])))
        anchor = rng.choice(target["items"])
        target["items"].insert(target["items"].index(anchor), card)
        body = {"status": target["stage"]["name"], "before": anchor["number"]}
        began = time.perf_counter()
        async with session.patch(f"{url}/issues/{card['number']}", json=body,
                                 headers=headers) as resp:  # fmt: skip
            await resp.read()
            assert resp.status == 200, await resp.text()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def report(results: dict[str, list[float]], issues: int) -> None:
    print(f"\nboard of one project: {issues:,} issues, 10 stages, {SHOWN} cards per column")
    print(f"{'measure':<26}{'p50 ms':>10}{'p99 ms':>10}")
    for name, samples in results.items():
        p50, p99 = percentiles(samples)
        print(f"{name:<26}{p50:>10.2f}{p99:>10.2f}")
    raw = percentiles(results["raw board SQL"])[0]
    served, over = (
        percentiles(results["board service (JSON)"]),
        percentiles(results["board over HTTP"]),
    )
    move = percentiles(results["card move over HTTP"])[0]
    print(f"\nservice/raw board SQL p50: {served[0] / raw:.2f}x (goal <= {GOALS['ratio']}x)")
    print(f"HTTP/raw board SQL p50: {over[0] / raw:.2f}x")
    grouped = percentiles(results["raw count by stage"])[0]
    print(f"HTTP/raw count-by-stage p50: {over[0] / grouped:.2f}x")
    for label, value, goal in (
        ("board p50 (HTTP)", over[0], GOALS["board_p50"]),
        ("board p99 (HTTP)", over[1], GOALS["board_p99"]),
        ("card move p50 (HTTP)", move, GOALS["move_p50"]),
    ):
        print(f"{label}: {value:.2f} ms (goal <= {goal} ms) {'OK' if value <= goal else 'MISS'}")


async def main(issues: int, rounds: int, moves: int) -> None:
    with tempfile.TemporaryDirectory(prefix="rhythm-board-") as tmp:
        settings = Settings(data_dir=Path(tmp), log_level="warning")
        org_id, access = await seed(settings, issues)
        results = await in_process(settings, org_id, access, rounds)
        results.update(await over_http(settings, rounds, moves))
        report(results, issues)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.cases_boards", description=__doc__)
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200, help="board reads per measure")
    parser.add_argument("--moves", type=int, default=200, help="card moves over HTTP")
    args = parser.parse_args()
    asyncio.run(main(args.issues, args.rounds, args.moves))
