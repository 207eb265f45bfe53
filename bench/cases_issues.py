"""Issues: create, read one, list 50 of 100,000 — each beside its plain baseline.

Harness cases (``python -m bench run issue-create issue-get issue-list``):

* ``issue-create``: a plain aiohttp handler doing ``BEGIN IMMEDIATE; INSERT (+ FTS
  by trigger); COMMIT`` under an asyncio.Lock through aiosqlite (three thread
  hops per write) vs ``POST .../issues`` (validated, numbered, ranked,
  FTS-indexed, change-logged, one transaction in one hop). Goal >= 100 %.
* ``issue-get``: a primary-key read through aiosqlite vs ``GET .../issues/1``.
  Goal >= 50 %.
* ``issue-list``: 50 rows of a 100,000-issue project with a status filter by the
  plain indexed query vs ``GET .../issues?status=Open&limit=50``. Goal >= 50 %.
  The harness cannot create 100k issues over HTTP in reasonable time, so the
  setup makes the project over HTTP and then loads the issues straight into the
  tenant file with the bulk path (bench.cases_issues.bulk_insert_issues, one
  transaction, FTS rows included) while the server sits idle; SQLite's own
  locking keeps that safe, and the server sees the rows on its next read.

``python -m bench.cases_issues --issues 20000`` measures storage: N realistic
issues (bench.gen's text model) created through the service path, then bytes
per issue for the whole file and per table/index (dbstat), against the issue's
goal of <= 2 KB per issue including the search index.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import aiosqlite
from aiohttp import web
from aiohttp.typedefs import Handler
from fractional_indexing import generate_key_between

from bench.api import Api, register_and_login
from bench.baselines import baseline
from bench.cases import Request, case
from tracker.domain.ids import new_id, now_iso
from tracker.storage import issues as issue_sql

JSON = {"Content-Type": "application/json"}
LIST_ISSUES = 100_000
STAGES = ("Open", "In Progress", "Resolved", "Closed")
DESCRIPTION = (
    "When the session token expires while the settings page is open, saving the form "
    "shows a blank error and the changes are lost. Expected: a login prompt, then the save."
)
CREATE_BODY = json.dumps(
    {"title": "Saving settings fails after the token expires {seq}", "description": DESCRIPTION}
).encode()

# --- plain baselines ---------------------------------------------------------------------------

DB = web.AppKey("db", aiosqlite.Connection)
LOCK = web.AppKey("lock", asyncio.Lock)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issues (
    row_id INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL,
    number INTEGER NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
    stage_id TEXT NOT NULL, rank TEXT NOT NULL, reporter TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS issues_number ON issues(project_id, number);
CREATE INDEX IF NOT EXISTS issues_stage ON issues(project_id, stage_id, number);
CREATE VIRTUAL TABLE IF NOT EXISTS issue_search USING fts5(
    title, description, content = 'issues', content_rowid = 'row_id');
CREATE TRIGGER IF NOT EXISTS issues_fts AFTER INSERT ON issues BEGIN
    INSERT INTO issue_search (rowid, title, description)
    VALUES (new.row_id, new.title, new.description);
END;
"""


def _open(db_path: Path, rows: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """A WAL database (synchronous=NORMAL) with the issue table and `rows` issues in it."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiosqlite.connect(db_path, isolation_level=None) as db:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.executescript(_SCHEMA)
            await db.execute("BEGIN")
            await db.executemany(
                "INSERT OR IGNORE INTO issues (id, project_id, number, title, description, "
                "stage_id, rank, reporter, created_at, updated_at) "
                "VALUES (?, 'p', ?, ?, ?, ?, ?, 'u', ?, ?)",
                (
                    (f"id-{n}", n, f"Issue {n}", DESCRIPTION, STAGES[n % 4], f"r{n:08d}",
                     "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z")
                    for n in range(1, rows + 1)
                ),
            )  # fmt: skip
            await db.execute("COMMIT")
            app[DB], app[LOCK] = db, asyncio.Lock()
            yield

    return ctx


def _app(db_path: Path, rows: int, method: str, handler: Handler) -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(_open(db_path, rows))
    app.router.add_route(method, "/", handler)
    return app


@baseline("issue_insert")
def issue_insert(db_path: Path) -> web.Application:
    """POST / {"title", "description"}: BEGIN IMMEDIATE; INSERT (+FTS trigger); COMMIT."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        now = now_iso()
        row = (new_id(), str(body["title"]), str(body.get("description", "")), now, now)
        db = request.app[DB]
        async with request.app[LOCK]:
            await db.execute("BEGIN IMMEDIATE")
            cursor = await db.execute(
                "INSERT INTO issues (id, project_id, number, title, description, stage_id, "
                "rank, reporter, created_at, updated_at) VALUES (?, 'p', "
                "(SELECT coalesce(max(number), 0) + 1 FROM issues WHERE project_id = 'p'), "
                "?, ?, 'Open', 'a0', 'u', ?, ?) RETURNING *",
                row,
            )
            created = dict(await cursor.fetchone())  # type: ignore[arg-type]
            await db.execute("COMMIT")
        return web.json_response(created, status=201)

    return _app(db_path, 0, "POST", handle)


@baseline("issue_read")
def issue_read(db_path: Path) -> web.Application:
    """GET / -> one issue by primary key."""

    async def handle(request: web.Request) -> web.Response:
        cursor = await request.app[DB].execute("SELECT * FROM issues WHERE row_id = 1")
        return web.json_response(dict(await cursor.fetchone()))  # type: ignore[arg-type]

    return _app(db_path, 1, "GET", handle)


@baseline("issue_list")
def issue_list(db_path: Path) -> web.Application:
    """GET / -> the newest 50 of 100,000 issues in one stage (index issues_stage)."""

    async def handle(request: web.Request) -> web.Response:
        cursor = await request.app[DB].execute(
            "SELECT * FROM issues WHERE project_id = 'p' AND stage_id = 'Open' "
            "ORDER BY number DESC LIMIT 50"
        )
        return web.json_response({"items": [dict(r) for r in await cursor.fetchall()]})

    return _app(db_path, LIST_ISSUES, "GET", handle)


# --- Rhythm ------------------------------------------------------------------------------------


async def _project(api: Api) -> tuple[str, dict[str, object], dict[str, str]]:
    """A user, an org and project WEB; returns (project URL, org, auth headers)."""
    token = await register_and_login(api)
    org = await api.call("POST", "/api/v1/orgs", json={"name": "Bench"}, token=token, expect=201)
    base = f"/api/v1/orgs/{org['slug']}/projects"
    await api.call("POST", base, json={"name": "Web", "key": "WEB"}, token=token, expect=201)
    return f"{base}/WEB", org, {"Authorization": f"Bearer {token}"}


@case(
    "issue-create",
    baseline="issue_insert",
    request=Request("POST", "/", JSON, CREATE_BODY, expect=201),
    goal=1.0,
)
async def issue_create(api: Api) -> Request:
    """aiosqlite INSERT + FTS (3 hops) vs POST .../issues (numbered, indexed, logged)"""
    url, _, auth = await _project(api)
    return Request("POST", f"{url}/issues", {**JSON, **auth}, CREATE_BODY, expect=201)


@case("issue-get", baseline="issue_read", request=Request("GET", "/"), goal=0.5)
async def issue_get(api: Api) -> Request:
    """aiosqlite primary-key read vs GET .../issues/1"""
    url, _, auth = await _project(api)
    body = {"title": "Read me", "description": DESCRIPTION}
    await api.call("POST", f"{url}/issues", json=body, token=auth["Authorization"][7:], expect=201)
    return Request("GET", f"{url}/issues/1", auth)


@case("issue-list", baseline="issue_list", request=Request("GET", "/"), goal=0.5)
async def issue_list_case(api: Api) -> Request:
    """plain indexed query, 50 of 100k vs GET .../issues?status=Open&limit=50"""
    url, org, auth = await _project(api)
    await asyncio.to_thread(seed_tenant_file, str(org["id"]), LIST_ISSUES)
    return Request("GET", f"{url}/issues?status=Open&limit=50", auth)


def seed_tenant_file(org_id: str, count: int) -> None:
    """Bulk-load `count` issues into project WEB of the (idle) server's tenant file."""
    pattern = str(Path(tempfile.gettempdir()) / "rhythm-bench-*" / "rhythm-data" / org_id)
    (folder,) = glob.glob(pattern)  # the org id is a fresh UUID: exactly one match
    conn = sqlite3.connect(Path(folder) / "tracker.db", isolation_level=None, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("BEGIN IMMEDIATE")
        project_id, reporter = conn.execute(
            "SELECT id, created_by FROM projects WHERE key = 'WEB'"
        ).fetchone()
        stages = [r[0] for r in conn.execute(
            "SELECT id FROM stages WHERE project_id = ? ORDER BY position", (project_id,)
        )]  # fmt: skip
        bulk_insert_issues(conn, project_id, _rows(count, stages, reporter))
        conn.execute("COMMIT")
    finally:
        conn.close()


def _rows(count: int, stages: list[str], reporter: str) -> list[dict[str, object]]:
    now = now_iso()
    ranks: dict[str, str | None] = {s: None for s in stages}
    rows: list[dict[str, object]] = []
    for n in range(count):
        stage = stages[n % len(stages)]
        ranks[stage] = generate_key_between(ranks[stage], None)
        rows.append({"id": new_id(), "title": f"Issue {n}", "description": DESCRIPTION,
                     "stage_id": stage, "rank": ranks[stage], "reporter": reporter,
                     "created_at": now, "updated_at": now})  # fmt: skip
    return rows


# --- storage per issue -------------------------------------------------------------------------


async def measure_storage(count: int, data_dir: Path) -> None:
    """Create `count` realistic issues through the service path and report bytes per issue."""
    from bench.gen import TextModel
    from tracker.core import open_core
    from tracker.domain.changes import Actor
    from tracker.domain.models.accounts import RegisterIn
    from tracker.domain.models.issues import IssueCreate
    from tracker.domain.models.orgs import OrgIn, ProjectIn
    from tracker.domain.permissions import OrgRole
    from tracker.services import accounts, issues, orgs, projects
    from tracker.services.access import OrgAccess, OrgRef, ProjectAccess, resolve_project
    from tracker.services.accounts import Principal
    from tracker.settings import Settings

    settings = Settings(data_dir=data_dir, log_level="warning")
    async with open_core(settings, background=False) as core:
        user = await accounts.register(
            core, RegisterIn(email="size@example.com", password="long enough pw")
        )
        actor = Actor(user.id)
        org = await orgs.create_org(core, Principal(user.id), OrgIn(name="size"), actor)
        org_ref = OrgRef(org.id, org.slug, org.name, OrgRole.OWNER)
        await projects.create_project(
            core, OrgAccess(user.id, org_ref), ProjectIn(name="W", key="WEB"), actor
        )
        access = ProjectAccess(
            user.id, org_ref, await resolve_project(core, org_ref, "WEB", user.id)
        )
        text, rng = TextModel(1), random.Random(2)
        began = time.perf_counter()
        for _ in range(count):
            body = IssueCreate(title=text.sentence(4, 10)[:-1], description=text.paragraph(1, 4),
                               priority=rng.choice(("normal", "major", "minor")))  # fmt: skip
            await issues.create_issue(core, access, body, actor)
        spent = time.perf_counter() - began
        async with core.tenants.lease(org.id) as db:
            await db.read(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
            sizes = await db.read(_dbstat)
        path = core.tenants.tenant_path(org.id)
    print(f"created {count:,} issues in {spent:.1f} s ({count / spent:,.0f}/s, one at a time)")
    _report(count, path.stat().st_size, sizes)


def _dbstat(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return conn.execute(
        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
    ).fetchall()


def _report(count: int, file_size: int, sizes: list[tuple[str, int]]) -> None:
    change_log = sum(s for n, s in sizes if n.startswith(("changes", "issue_changes")))
    print(f"file: {file_size / count:,.0f} B/issue (goal <= 2,048 incl. the search index)")
    print(f"  without the change log: {(file_size - change_log) / count:,.0f} B/issue")
    print(f"  change log (history):   {change_log / count:,.0f} B/issue")
    for name, size in sizes:
        if size / count >= 5:
            print(f"    {name:28} {size / count:6,.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_issues", description=__doc__)
    parser.add_argument("--issues", type=int, default=20_000)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="rhythm-bench-size-"))
    try:
        asyncio.run(measure_storage(args.issues, data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()


def bulk_insert_issues(
    conn: sqlite3.Connection, project_id: str, rows: Iterable[dict[str, Any]]
) -> int:
    """A benchmark fixture, not a product path: numbered, search-indexed issue rows
    written straight into an idle server's tenant file, with NO change rows (the
    product's import is tracker.services.imports, which logs every issue).
    """
    batch = list(rows)
    if not batch:
        return 0
    first = conn.execute(
        "UPDATE projects SET next_number = next_number + ? WHERE id = ? RETURNING next_number - ?",
        (len(batch), project_id, len(batch)),
    ).fetchone()[0]
    defaults = {
        "description": "", "type": "task", "priority": "normal", "sprint_id": None,
        "parent_id": None, "due_date": None, "estimate": None, "custom_fields": "{}",
        "resolved_at": None,
    }  # fmt: skip
    prepared = [
        {**defaults, **row, "project_id": project_id, "number": first + n}
        for n, row in enumerate(batch)
    ]
    before = conn.execute("SELECT coalesce(max(row_id), 0) FROM issues").fetchone()[0]
    conn.executemany(issue_sql._INSERT, prepared)
    conn.execute(
        "INSERT INTO issue_search (rowid, title, description, comments) "
        "SELECT row_id, title, description, comments FROM issue_search_source WHERE row_id > ?",
        (before,),
    )
    return len(prepared)
