"""Plain-aiohttp baseline apps, each run as its own server process.

``python -m bench.baselines <name> --port P [--db path]``
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
from aiohttp import web

READY_PATH = "/_ready"

Factory = Callable[[Path], web.Application]
BASELINES: dict[str, Factory] = {}


def baseline(name: str) -> Callable[[Factory], Factory]:
    """Register an app factory ``(db_path) -> web.Application`` under ``name``."""

    def register(factory: Factory) -> Factory:
        BASELINES[name] = factory
        return factory

    return register


@baseline("json_ok")
def json_ok(db_path: Path) -> web.Application:
    """GET / -> {"status": "ok"}: the least an aiohttp JSON endpoint can do."""

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/", handle)
    return app


DB_KEY = web.AppKey("db", aiosqlite.Connection)
LOCK_KEY = web.AppKey("lock", asyncio.Lock)


@baseline("sqlite_update")
def sqlite_update(db_path: Path) -> web.Application:
    """PATCH / {"display_name"} -> one UPDATE of one row, the naive aiosqlite way."""

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        name, now = str(body["display_name"]), datetime.now(UTC).isoformat()
        db = request.app[DB_KEY]
        async with request.app[LOCK_KEY]:
            await db.execute("BEGIN IMMEDIATE")
            await db.execute(
                "UPDATE users SET display_name = ?, updated_at = ? WHERE id = 1", (name, now)
            )
            await db.execute("COMMIT")
        return web.json_response({"id": 1, "display_name": name, "updated_at": now})

    app = web.Application()
    app.cleanup_ctx.append(_users_db(db_path))
    app.router.add_patch("/", handle)
    return app


def _users_db(db_path: Path) -> Callable[[web.Application], AsyncIterator[None]]:
    """Open a WAL database (synchronous=NORMAL) holding one user row."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiosqlite.connect(db_path, isolation_level=None) as db:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute(
                "CREATE TABLE IF NOT EXISTS users ("
                " id INTEGER PRIMARY KEY, email TEXT, display_name TEXT, updated_at TEXT)"
            )
            await db.execute("INSERT OR IGNORE INTO users VALUES (1, 'b@example.com', 'B', '')")
            app[DB_KEY], app[LOCK_KEY] = db, asyncio.Lock()
            yield

    return ctx


async def _ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main(argv: list[str] | None = None) -> None:
    """Serve one baseline app until terminated."""
    from bench.cases import discover

    discover()  # case modules may register their own baselines
    parser = argparse.ArgumentParser(prog="python -m bench.baselines")
    parser.add_argument("name", choices=sorted(BASELINES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", type=Path, default=Path("bench-baseline.db"))
    args = parser.parse_args(argv)
    app = BASELINES[args.name](args.db)
    app.router.add_get(READY_PATH, _ready)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    # Run main() from the importable module, not __main__, so baselines that
    # case modules register land in the same BASELINES dict.
    importlib.import_module("bench.baselines").main()
