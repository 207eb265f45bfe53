"""Search benchmark: 20 queries over HTTP vs the naive raw FTS5 query, in the same run.

    .venv/bin/python -m bench.gen --data-dir /tmp/rhythm-1m --issues 1000000
    .venv/bin/python -m bench.cases_search --data-dir /tmp/rhythm-1m --rounds 30

The raw side is plain sqlite3 on the same tenant file: `MATCH … ORDER BY bm25(…)
LIMIT 20` (joined to issues with the same filters where the query has some), or
for a filters-only query the obvious `ORDER BY updated_at DESC LIMIT 20`. The
Rhythm side is `GET …/projects/CORE/issues?q=…&limit=20` (org-wide: `GET
/orgs/bench/issues?q=…`) against `rhythm serve` on that data directory, with
a bearer token. Rounds alternate raw and HTTP for each query, so drift on this
box hits both. Words are picked from the index's own vocabulary by how many
issues contain them, so every class exists at any size the generator made.

Output: p50/p99 per class for both sides, the ratio raw/Rhythm at p50 and p99,
and the goals of issue 5 (selective: within +10 ms of raw; broad: p99 <= 150 ms
and >= 5x faster than raw).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp

from bench.api import PASSWORD, Api
from bench.gen import EMAIL, ORG
from bench.servers import HOST, Server, free_port

PROJECT = "CORE"
RAW_SCORE = "bm25(issue_search, 5.0, 1.0, 0.5)"
JOINED = "issue_search JOIN issues i ON i.row_id = issue_search.rowid"


@dataclass
class Query:
    """One benchmark query: the Rhythm text, the raw SQL doing the same work, its class."""

    kind: str
    q: str
    raw_sql: str
    raw_args: tuple[object, ...]
    org_wide: bool = False
    hits: int = 0
    raw_ms: list[float] = field(default_factory=list)
    http_ms: list[float] = field(default_factory=list)


def pick_words(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Words by document frequency, read from the index's vocabulary (deterministic order)."""
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.v USING fts5vocab(main, issue_search, 'row')"
    )
    total = conn.execute("SELECT max(row_id) FROM issues").fetchone()[0]
    # the bands at 1,000,000 issues, scaled to the data set's size
    scale = total / 1_000_000
    bands = {
        "very_rare": (2, max(3, 30 * scale)), "rare": (max(3, 100 * scale), max(10, 1000 * scale)),
        "selective": (3000 * scale, 9000 * scale), "mid": (30_000 * scale, 100_000 * scale),
        "common": (170_000 * scale, total + 1),
    }  # fmt: skip
    words: dict[str, list[str]] = {}
    for name, (low, high) in bands.items():
        rows = conn.execute(
            "SELECT term FROM temp.v WHERE doc >= ? AND doc < ? AND length(term) > 3 "
            "AND term GLOB '[a-z]*' ORDER BY doc DESC, term LIMIT 3",
            (int(low), int(high)),
        ).fetchall()
        words[name] = [r[0] for r in rows]
        if len(words[name]) < 3:
            raise SystemExit(f"no 3 words with {low:.0f}-{high:.0f} issues; generate more data")
    words["common"] = ["the", "and", *words["common"][:1]]
    return words


def build_queries(conn: sqlite3.Connection, project_id: str) -> list[Query]:
    w = pick_words(conn)
    scope = "i.project_id = ? AND i.deleted_at IS NULL"

    def text(
        kind: str, q: str, match: str, extra: str = "", args: tuple = (), org: bool = False
    ) -> Query:
        where = f"issue_search MATCH ? AND {'i.deleted_at IS NULL' if org else scope}{extra}"
        sql = f"SELECT i.row_id FROM {JOINED} WHERE {where} ORDER BY {RAW_SCORE} LIMIT 20"
        return Query(kind, q, sql, (match, *(() if org else (project_id,)), *args), org)

    open_stage = " AND i.stage_id IN (SELECT id FROM stages WHERE category != 'done')"
    plain = "SELECT i.row_id FROM issues i WHERE {} ORDER BY i.{} DESC LIMIT 20"
    mid, sel = w["mid"], w["selective"]
    return [
        text("very rare", w["very_rare"][0], f'"{w["very_rare"][0]}"'),
        text("very rare", w["very_rare"][1], f'"{w["very_rare"][1]}"'),
        text("rare", w["rare"][0], f'"{w["rare"][0]}"'),
        text("rare", w["rare"][1], f'"{w["rare"][1]}"'),
        text("two words", f"{mid[0]} {sel[0]}", f'"{mid[0]}" AND "{sel[0]}"'),
        text("two words", f"{mid[1]} {mid[2]}", f'"{mid[1]}" AND "{mid[2]}"'),
        text("phrase", f'"the {mid[0]}"', f'"the {mid[0]}"'),
        text("phrase", f'"{sel[1]} the"', f'"{sel[1]} the"'),
        text("prefix", f"{mid[0][:3]}*", f'"{mid[0][:3]}" *'),
        text("prefix", f"{sel[2][:4]}*", f'"{sel[2][:4]}" *'),
        text("common word", "the", '"the"'),
        text("common word", "and", '"and"'),
        text("common word", w["common"][2], f'"{w["common"][2]}"'),
        text("words + filters", f"{mid[0]} is:open", f'"{mid[0]}"', open_stage),
        text(
            "words + filters",
            f"{sel[0]} priority:critical",
            f'"{sel[0]}"',
            " AND i.priority = 'critical'",
        ),
        text(
            "words + filters", "the type:bug is:open", '"the"', " AND i.type = 'bug'" + open_stage
        ),
        Query(
            "filters only",
            "is:open priority:critical",
            plain.format(scope + open_stage + " AND i.priority = 'critical'", "updated_at"),
            (project_id,),
        ),
        Query(
            "filters only",
            "type:bug sort:created",
            plain.format(scope + " AND i.type = 'bug'", "created_at"),
            (project_id,),
        ),
        text("org-wide", mid[1], f'"{mid[1]}"', org=True),
        text("org-wide", "the is:open", '"the"', open_stage, org=True),
    ]


def count_hits(conn: sqlite3.Connection, query: Query) -> int:
    """How many issues the text part matches (the work a naive ranking does)."""
    if not query.raw_sql.startswith(f"SELECT i.row_id FROM {JOINED}"):
        return -1
    row = conn.execute(
        "SELECT count(*) FROM issue_search WHERE issue_search MATCH ?", (query.raw_args[0],)
    ).fetchone()
    return int(row[0])


async def run(data_dir: Path, rounds: int) -> int:
    (tenant,) = glob.glob(str(data_dir / "*" / "tracker.db"))
    port = free_port()
    argv = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data_dir),
            "--host", HOST, "--port", str(port)]  # fmt: skip
    async with Server(
        "rhythm", argv, "/api/v1/health/live", port, data_dir / "bench-serve.log"
    ) as server:
        conn = sqlite3.connect(f"file:{tenant}?mode=ro", uri=True)
        conn.execute("PRAGMA cache_size = -16000")  # what Rhythm's connections use
        project_id = conn.execute("SELECT id FROM projects WHERE key = ?", (PROJECT,)).fetchone()[0]
        queries = build_queries(conn, project_id)
        for query in queries:
            query.hits = count_hits(conn, query)
        async with aiohttp.ClientSession() as session:
            api = Api(session, server.url)
            login = await api.call(
                "POST", "/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login['access_token']}"}
            for n in range(rounds + 1):  # round 0 warms both sides and is not counted
                for query in queries:
                    raw = _time_raw(conn, query)
                    http = await _time_http(session, server.url, headers, query)
                    if n:
                        query.raw_ms.append(raw)
                        query.http_ms.append(http)
                print(f"round {n}/{rounds}", file=sys.stderr, flush=True)
    report(queries)
    return 0


def _time_raw(conn: sqlite3.Connection, query: Query) -> float:
    began = time.perf_counter()
    conn.execute(query.raw_sql, query.raw_args).fetchall()
    return (time.perf_counter() - began) * 1000


async def _time_http(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], query: Query
) -> float:
    path = (
        f"/api/v1/orgs/{ORG}/issues"
        if query.org_wide
        else f"/api/v1/orgs/{ORG}/projects/{PROJECT}/issues"
    )
    url = f"{base}{path}?limit=20&q={quote(query.q)}"
    began = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{query.q!r}: HTTP {response.status}: {await response.text()}")
    return (time.perf_counter() - began) * 1000


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


HEADER = "{:<34}{:>9}  {:>8} {:>8}  {:>10} {:>8}  {:>6}"
ROW = "{:<34}{:>9}  {:8.1f} {:8.1f}  {:10.1f} {:8.1f}  {:6.1f}"
CLASS_HEADER = "{:<18}{:>8} {:>8}  {:>10} {:>8}  {:>9} {:>6}"
CLASS_ROW = "{:<18}{:8.1f} {:8.1f}  {:10.1f} {:8.1f}  {:9.1f} {:6.1f}"


def report(queries: list[Query]) -> None:
    print("\n" + HEADER.format("query", "hits", "raw p50", "p99", "rhythm p50", "p99", "x p50"))
    for query in queries:
        raw50, raw99 = _p(query.raw_ms, 0.5), _p(query.raw_ms, 0.99)
        r50, r99 = _p(query.http_ms, 0.5), _p(query.http_ms, 0.99)
        label = f"[{query.kind}] {query.q}"[:33]
        hits = "-" if query.hits < 0 else f"{query.hits:,}"
        print(ROW.format(label, hits, raw50, raw99, r50, r99, raw50 / r50))
    print(
        "\n" + CLASS_HEADER.format("class", "raw p50", "p99", "rhythm p50", "p99", "x p50", "p99")
    )
    for kind in dict.fromkeys(q.kind for q in queries):
        raw = [v for q in queries if q.kind == kind for v in q.raw_ms]
        http = [v for q in queries if q.kind == kind for v in q.http_ms]
        p50s, p99s = (_p(raw, 0.5), _p(http, 0.5)), (_p(raw, 0.99), _p(http, 0.99))
        print(CLASS_ROW.format(kind, p50s[0], p99s[0], p50s[1], p99s[1],
                               p50s[0] / p50s[1], p99s[0] / p99s[1]))  # fmt: skip
    _goals(queries)


def _goals(queries: list[Query]) -> None:
    """Issue 5's goals, per query: selective (< 10k hits) and broad (>= 100k hits)."""
    print()
    for query in queries:
        if 0 <= query.hits < 10_000:
            gap = statistics.median(query.http_ms) - statistics.median(query.raw_ms)
            verdict = "ok" if gap <= 10 else "MISS"
            print(f"selective {query.q!r}: Rhythm - raw = {gap:+.1f} ms at p50 (<= +10): {verdict}")
        elif query.hits >= 100_000:
            p99 = _p(query.http_ms, 0.99)
            speedup = _p(query.raw_ms, 0.5) / _p(query.http_ms, 0.5)
            verdict = "ok" if p99 <= 150 and speedup >= 5 else "MISS"
            print(
                f"broad {query.q!r}: p99 {p99:.0f} ms (<=150), {speedup:.1f}x raw (>=5): {verdict}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_search", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="made by bench.gen")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.data_dir.resolve(), args.rounds))


if __name__ == "__main__":
    sys.exit(main())
