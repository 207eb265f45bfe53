"""The raw stack's spread read: plain aiohttp + sqlite3, an LRU of open tenant files.

``python -m bench.raw_tenants --data-dir D --cap 256 --port P`` serves
``GET /t/{org_id}`` = the projects of one tenant file ``D/{org_id}/tracker.db``,
with no auth, no directory lookup, no validation and no thread hops: SQLite runs
inline on the event loop (the cheapest possible shape, fine for a benchmark
only). At most ``--cap`` connections stay open, opened ``mode=rw`` with the same
pragmas as Rhythm and closed when least recently used. bench.cases_tenants runs
it over the very files Rhythm just served, so "what does spreading cost the raw
stack" is measured in the same run as Rhythm's figure.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections import OrderedDict
from pathlib import Path

from aiohttp import web

PRAGMAS = (
    "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF;"
    "PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -16000;"
    "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 4000;"
)


def make_app(data_dir: Path, cap: int) -> web.Application:
    open_files: OrderedDict[str, sqlite3.Connection] = OrderedDict()

    def tenant(org_id: str) -> sqlite3.Connection:
        conn = open_files.get(org_id)
        if conn is not None:
            open_files.move_to_end(org_id)
            return conn
        uri = (data_dir / org_id / "tracker.db").as_uri() + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5)
        conn.row_factory = sqlite3.Row
        conn.executescript(PRAGMAS)
        open_files[org_id] = conn
        while len(open_files) > cap:
            open_files.popitem(last=False)[1].close()
        return conn

    async def projects(request: web.Request) -> web.Response:
        rows = tenant(request.match_info["org"]).execute(
            "SELECT id, key, name, description, visibility FROM projects "
            "WHERE deleted_at IS NULL ORDER BY key"
        )
        return web.json_response({"items": [dict(r) for r in rows]})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/t/{org}", projects)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_tenants", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--cap", type=int, default=256)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(make_app(args.data_dir.resolve(), args.cap), host="127.0.0.1",
                port=args.port, print=None, access_log=None)  # fmt: skip


if __name__ == "__main__":
    main()
