"""Checks and repairs of a tenant's derived data: the search index and `stage_counts`.

Both are caches of other rows, kept in step inside every write's transaction; a
bug, a hand edit or a restored file from elsewhere can still leave them wrong.
Checking the search index is two steps: FTS5's own `integrity-check` with
rank 1 (the index against its content view, exact, one pass); only when that
fails, a per-issue comparison names the issues whose entry differs: the index's
tokens (an `fts5vocab` instance table) are summed per document and compared
with the same sums over a scratch index built, a batch at a time, from the
issues as they are now.
"""

from __future__ import annotations

import json
import sqlite3

_COLUMNS = "title, description, comments, title_cjk, description_cjk, comments_cjk"
_TOKENIZER = "unicode61 remove_diacritics 2"  # as in tenant migration 0010
#: An order-free digest of one token instance (column, position, term), summed per issue.
_DIGEST = (
    "length(col) * 1000003 + offset * 7919 + length(term) * 131"
    " + unicode(term) * 17 + unicode(substr(term, -1)) * 13 + unicode(substr(term, 2)) * 3"
)
BATCH = 2000


def integrity(conn: sqlite3.Connection) -> list[str]:
    """`PRAGMA integrity_check`'s complaints (empty when the file is sound)."""
    return [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]


def search_index_matches(conn: sqlite3.Connection) -> str | None:
    """None when the index is sound and equals its content, else SQLite's complaint."""
    try:
        conn.execute("INSERT INTO issue_search (issue_search, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None


def _digests(conn: sqlite3.Connection, vocab: str) -> dict[int, tuple[int, int]]:
    sql = f"SELECT doc, count(*), sum({_DIGEST}) FROM {vocab} GROUP BY doc"
    return {int(doc): (int(n), int(s)) for doc, n, s in conn.execute(sql)}


def stale_issues(conn: sqlite3.Connection) -> list[str]:
    """Keys (`WEB-7`) of issues whose index entry differs from the issue, or is missing;
    `row <id>` for an entry with no issue. Uses temp tables on this connection."""
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.rhythm_check_main "
        "USING fts5vocab(main, issue_search, instance)"
    )
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.rhythm_check_probe USING fts5({_COLUMNS}, "
        f"tokenize = '{_TOKENIZER}')"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.rhythm_check_probe_v "
        "USING fts5vocab(temp, rhythm_check_probe, instance)"
    )
    try:
        indexed = _digests(conn, "temp.rhythm_check_main")
        wrong: set[int] = set()
        seen: set[int] = set()
        last = 0
        while True:
            rows = conn.execute(
                "SELECT row_id FROM issues WHERE row_id > ? ORDER BY row_id LIMIT ?", (last, BATCH)
            ).fetchall()
            if not rows:
                break
            low, high = rows[0][0], rows[-1][0]
            conn.execute("DELETE FROM temp.rhythm_check_probe")
            conn.execute(
                f"INSERT INTO temp.rhythm_check_probe (rowid, {_COLUMNS}) "
                f"SELECT row_id, {_COLUMNS} FROM issue_search_source WHERE row_id BETWEEN ? AND ?",
                (low, high),
            )
            actual = _digests(conn, "temp.rhythm_check_probe_v")
            for (row_id,) in rows:
                seen.add(row_id)
                if indexed.get(row_id) != actual.get(row_id):
                    wrong.add(row_id)
            last = high
        orphans = sorted(set(indexed) - seen)
    finally:
        conn.execute("DROP TABLE IF EXISTS temp.rhythm_check_probe_v")
        conn.execute("DROP TABLE IF EXISTS temp.rhythm_check_probe")
        conn.execute("DROP TABLE IF EXISTS temp.rhythm_check_main")
    keys = [
        f"{key}-{number}"
        for key, number in conn.execute(
            "SELECT p.key, i.number FROM issues i JOIN projects p ON p.id = i.project_id "
            "WHERE i.row_id IN (SELECT value FROM json_each(?)) ORDER BY p.key, i.number",
            (json.dumps(sorted(wrong)),),
        )
    ]
    return keys + [f"row {row_id}" for row_id in orphans]


def rebuild_search(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO issue_search (issue_search) VALUES ('rebuild')")


def stage_count_faults(conn: sqlite3.Connection) -> list[str]:
    """`KEY/Stage: counted N, actually M` for every column count that is wrong."""
    found = conn.execute(
        """
        SELECT p.key, s.name, c.live,
               (SELECT count(*) FROM issues i
                WHERE i.project_id = s.project_id AND i.stage_id = s.id AND i.deleted_at IS NULL)
        FROM stages s JOIN projects p ON p.id = s.project_id
        LEFT JOIN stage_counts c ON c.stage_id = s.id
        ORDER BY p.key, s.position
        """
    ).fetchall()
    faults = [
        f"{key}/{name}: counted {'nothing' if live is None else live}, actually {actual}"
        for key, name, live, actual in found
        if live != actual
    ]
    extra = conn.execute(
        "SELECT count(*) FROM stage_counts WHERE stage_id NOT IN (SELECT id FROM stages)"
    ).fetchone()[0]
    if extra:
        faults.append(f"{extra} count(s) of stages that do not exist")
    return faults


def recount_stages(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM stage_counts")
    conn.execute(
        """
        INSERT INTO stage_counts (stage_id, live)
        SELECT s.id,
               (SELECT count(*) FROM issues i
                WHERE i.project_id = s.project_id AND i.stage_id = s.id AND i.deleted_at IS NULL)
        FROM stages s
        """
    )
