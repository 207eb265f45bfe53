"""CJK search cost: index size and query time before and after migration 0010, same data.

    .venv/bin/python -m bench.gen --data-dir /tmp/rhythm-cjk --issues 100000 --cjk-share 0.05
    .venv/bin/python -m bench.cases_cjk --data-dir /tmp/rhythm-cjk --rounds 20

"After" is a copy of the tenant as Rhythm wrote it (six-column index fed by
`issue_cjk`); "before" is a copy whose index is rebuilt as migration 0001 defined
it (three columns, no `issue_cjk`): what main had. Both copies are VACUUMed, then:

- sizes: the search index's tables (dbstat) and the whole file, per issue;
- the migration's own cost: backfilling `issue_cjk` and rebuilding the index;
- query time: `MATCH ? ORDER BY bm25 LIMIT 20` in raw sqlite3 (the core of the
  relevance plan) with each side's MATCH string: before quoted every term whole,
  after is `tracker.domain.fts.build_match`. Rounds alternate the sides; Latin
  words come from the index's vocabulary (bench.cases_search.pick_words), CJK
  words from the generator's CJK vocabulary by frequency rank.

The HTTP side (Rhythm vs raw, issue 5's goals) is `bench.cases_search` on the same
data directory; its Latin MATCH strings are unchanged by the CJK columns.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.cases_search import pick_words
from bench.gen import cjk_vocabulary
from tracker.domain.fts import build_match, quote
from tracker.domain.query import parse_query
from tracker.storage.migrate import load_migrations
from tracker.storage.search_index import backfill_cjk

BEFORE_SCORE = "bm25(issue_search, 5.0, 1.0, 0.5)"
AFTER_SCORE = "bm25(issue_search, 5.0, 1.0, 0.5, 5.0, 1.0, 0.5)"


def old_index_sql() -> str:
    """The view and index of migration 0001 (what main had before 0010)."""
    sql = load_migrations("tenant")[0].sql
    start = sql.index("CREATE VIEW issue_search_source")
    end = sql.index(");", sql.index("CREATE VIRTUAL TABLE issue_search")) + 2
    return sql[start:end]


def to_before(conn: sqlite3.Connection) -> float:
    """Rebuild the copy's index the pre-0010 way; returns the rebuild time."""
    conn.executescript(
        "DROP TABLE issue_search; DROP VIEW issue_search_source; DROP TABLE issue_cjk;"
        + old_index_sql()
    )
    began = time.perf_counter()
    conn.execute("INSERT INTO issue_search (issue_search) VALUES ('rebuild')")
    conn.commit()
    return time.perf_counter() - began


def redo_migration(conn: sqlite3.Connection) -> float:
    """Migration 0010's Python step on the after copy (issue_cjk emptied first)."""
    conn.execute("DELETE FROM issue_cjk")
    began = time.perf_counter()
    backfill_cjk(conn)
    conn.commit()
    return time.perf_counter() - began


def index_bytes(conn: sqlite3.Connection) -> int:
    return int(
        conn.execute(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat "
            "WHERE name LIKE 'issue_search%' OR name = 'issue_cjk'"
        ).fetchone()[0]
    )


def queries(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(class, query text) pairs: Latin by document frequency, CJK by vocabulary rank."""
    words = pick_words(conn)
    latin = [("latin " + band, words[band][0]) for band in ("rare", "selective", "mid", "common")]
    cjk = cjk_vocabulary(1)
    picked = [("cjk frequent", cjk[0]), ("cjk mid", cjk[200]), ("cjk rare", cjk[5000]),
              ("cjk one char", cjk[0][0]), ("cjk two words", f"{cjk[0]} {cjk[50]}"),
              ("mixed", f"{words['mid'][0]} {cjk[10]}")]  # fmt: skip
    return latin + picked


def old_match(text: str) -> str:
    """What main sent to MATCH: every term quoted whole, ANDed."""
    return " AND ".join(quote(term.text) for term in parse_query(text).terms)


def new_match(text: str) -> str:
    plan = build_match(parse_query(text).terms)
    assert plan.positive is not None
    return plan.positive


def timed(conn: sqlite3.Connection, score: str, match: str) -> float:
    began = time.perf_counter()
    conn.execute(
        f"SELECT rowid FROM issue_search WHERE issue_search MATCH ? ORDER BY {score} LIMIT 20",
        (match,),
    ).fetchall()
    return (time.perf_counter() - began) * 1000


def hits(conn: sqlite3.Connection, match: str) -> int:
    sql = "SELECT count(*) FROM issue_search WHERE issue_search MATCH ?"
    return int(conn.execute(sql, (match,)).fetchone()[0])


def run(data_dir: Path, rounds: int) -> int:
    (tenant,) = glob.glob(str(data_dir / "*" / "tracker.db"))
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        copies = {}
        for side in ("before", "after"):
            path = Path(tmp) / f"{side}.db"
            source = sqlite3.connect(f"file:{tenant}?mode=ro", uri=True)
            target = sqlite3.connect(path)
            source.backup(target)
            source.close()
            copies[side] = target
        after, before = copies["after"], copies["before"]
        issues = after.execute("SELECT count(*) FROM issues").fetchone()[0]
        cjk_rows = after.execute("SELECT count(*) FROM issue_cjk").fetchone()[0]
        migration_s = redo_migration(after)
        rebuild_s = to_before(before)
        for conn in (before, after):
            conn.execute("VACUUM")
            conn.execute("PRAGMA cache_size = -16000")  # what Rhythm's connections use
        print(f"{issues:,} issues, {cjk_rows:,} with CJK text ({cjk_rows / issues:.1%})")
        print(f"migration 0010 (backfill + rebuild): {migration_s:.1f} s; "
              f"rebuilding the old index: {rebuild_s:.1f} s")  # fmt: skip
        sizes = {}
        for side, conn in copies.items():
            files = (Path(tmp) / f"{side}.db").stat().st_size
            sizes[side] = (index_bytes(conn), files)
            index, per = sizes[side][0] / 2**20, sizes[side][0] / issues
            print(f"{side:>6}: search index {index:7.1f} MiB ({per:6.0f} B/issue), "
                  f"file {files / 2**20:7.1f} MiB")  # fmt: skip
        grow = sizes["after"][0] - sizes["before"][0]
        share = grow / sizes["before"][0]
        per_cjk = f", {grow / cjk_rows:+.0f} B per CJK issue" if cjk_rows else ""
        print(f"index growth: {grow / 2**20:+.1f} MiB ({share:+.1%}), "
              f"{grow / issues:+.0f} B/issue overall{per_cjk}")  # fmt: skip
        plan = queries(after)
        times: dict[str, dict[str, list[float]]] = {q: {"before": [], "after": []} for _, q in plan}
        for n in range(rounds + 1):
            for _, q in plan:
                for side, conn, score, match in (
                    ("before", before, BEFORE_SCORE, old_match(q)),
                    ("after", after, AFTER_SCORE, new_match(q)),
                ):
                    elapsed = timed(conn, score, match)
                    if n:
                        times[q][side].append(elapsed)
        print(f"\n{'class':<16}{'query':<24}{'hits before':>12}{'hits after':>11}"
              f"{'p50 before':>12}{'p50 after':>11}{'p99 after':>11}")  # fmt: skip
        for kind, q in plan:
            b, a = times[q]["before"], times[q]["after"]
            p99 = sorted(a)[max(0, int(len(a) * 0.99) - 1)]
            print(f"{kind:<16}{q[:22]:<24}{hits(before, old_match(q)):>12,}"
                  f"{hits(after, new_match(q)):>11,}{statistics.median(b):>10.2f}ms"
                  f"{statistics.median(a):>9.2f}ms{p99:>9.2f}ms")  # fmt: skip
        for conn in copies.values():
            conn.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_cjk", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="made by bench.gen")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    return run(args.data_dir, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
