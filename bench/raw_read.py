"""The raw read stacks Rhythm's read path is measured against (bench.cases_read).

``python -m bench.raw_read --db TENANT.db --project P --mode inline|aiosqlite --port N``
serves, from Rhythm's own tenant file (same rows, same schema, same pragmas):

* ``/health``   -> ``{"status":"ok"}`` (plain aiohttp);
* ``/issue``    -> issue 1 of the project, ``SELECT *`` by (project, number);
* ``/projects`` -> the live projects, as bench/raw_tenants.py;
* ``/issues``   -> the newest 50 live issues of the project;
* ``/board``    -> counts by stage and the first ``BOARD_LIMIT`` cards of each column.

No auth, no directory lookup, no validation. ``inline`` runs sqlite3 on the event
loop (the physical best for a tiny read; fine for a benchmark only), ``aiosqlite``
does the same through aiosqlite (a thread hop per statement: the usual async twin).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
from aiohttp import web

BOARD_LIMIT = 50
PRAGMAS = (
    "PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF; PRAGMA cache_size = -16000;"
    "PRAGMA temp_store = MEMORY;"
)
ISSUE = "SELECT * FROM issues WHERE project_id = ? AND number = 1 AND deleted_at IS NULL"
PROJECTS = (
    "SELECT id, key, name, description, visibility FROM projects "
    "WHERE deleted_at IS NULL ORDER BY key"
)
ISSUES = (
    "SELECT * FROM issues WHERE project_id = ? AND deleted_at IS NULL ORDER BY number DESC LIMIT 50"
)
STAGES = "SELECT id, name, category FROM stages WHERE project_id = ? ORDER BY position"
COUNTS = (
    "SELECT stage_id, count(*) FROM issues WHERE project_id = ? AND deleted_at IS NULL "
    "GROUP BY stage_id"
)
CARDS = (
    "SELECT id, number, title, type, priority, stage_id, estimate, rank FROM issues "
    "WHERE project_id = ? AND stage_id = ? AND deleted_at IS NULL ORDER BY rank LIMIT ?"
)
CARD_NAMES = ("id", "number", "title", "type", "priority", "stage_id", "estimate", "rank")

Query = Callable[[str, tuple[Any, ...]], Awaitable[list[tuple[Any, ...]]]]


def json_body(value: object) -> web.Response:
    return web.Response(text=json.dumps(value), content_type="application/json")


def routes(query: Query, project: str) -> list[web.RouteDef]:
    """The five endpoints over one `query(sql, params) -> rows` primitive."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def issue(request: web.Request) -> web.Response:
        (row,) = await query(ISSUE, (project,))
        return json_body(dict(row))

    async def projects(request: web.Request) -> web.Response:
        return json_body({"items": [dict(r) for r in await query(PROJECTS, ())]})

    async def issues(request: web.Request) -> web.Response:
        items = [dict(r) for r in await query(ISSUES, (project,))]
        return json_body({"items": items, "next_cursor": None})

    async def board(request: web.Request) -> web.Response:
        counts: dict[str, int] = dict(await query(COUNTS, (project,)))
        columns = []
        for stage_id, name, category in await query(STAGES, (project,)):
            rows = await query(CARDS, (project, stage_id, BOARD_LIMIT))
            cards = [dict(zip(CARD_NAMES, r, strict=True)) for r in rows]
            columns.append({"stage": {"id": stage_id, "name": name, "category": category},
                            "count": counts.get(stage_id, 0), "items": cards})  # fmt: skip
        return json_body({"columns": columns})

    return [web.get("/health", health), web.get("/issue", issue), web.get("/projects", projects),
            web.get("/issues", issues), web.get("/board", board)]  # fmt: skip


def make_app(db: Path, project: str, mode: str) -> web.Application:
    app = web.Application()
    uri = db.resolve().as_uri() + "?mode=rw"
    if mode == "inline":
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.executescript(PRAGMAS)

        async def inline(sql: str, params: tuple[Any, ...]) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        app.add_routes(routes(inline, project))
        return app

    holder: dict[str, aiosqlite.Connection] = {}

    async def threaded(sql: str, params: tuple[Any, ...]) -> list[Any]:
        async with holder["db"].execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiosqlite.connect(uri, uri=True, isolation_level=None) as conn:
            conn.row_factory = aiosqlite.Row
            await conn.executescript(PRAGMAS)
            holder["db"] = conn
            yield

    app.cleanup_ctx.append(ctx)
    app.add_routes(routes(threaded, project))
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_read", description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--project", required=True, help="the project's id")
    parser.add_argument("--mode", choices=["inline", "aiosqlite"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(make_app(args.db, args.project, args.mode), host="127.0.0.1", port=args.port,
                print=None, access_log=None)  # fmt: skip


if __name__ == "__main__":
    main()
