"""SQL for boards, card ranks and the backlog (tenant database).

A column is read through the partial index issues_board (project_id,
stage_id, rank, + the card columns) WHERE deleted_at IS NULL: one short range
scan per column, already in rank order, with no table rows. Column counts come
from stage_counts (kept by triggers, migration 0006) unless `q` filters them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the query language loads only for a filtered board (cli/fast.py reads
    # columns with sqlite3 alone; start-up time: docs/cli.md)
    from tracker.domain.query import Query
    from tracker.storage.search_filters import FilterContext, Sql

#: A card row is a plain tuple in this order (+ rank): 2,000 cards per board are read,
#: and tuples skip sqlite3.Row's per-name lookups (measured: a third of the board's time).
CARD_COLUMNS = "id, number, title, type, priority, stage_id, estimate"
CardRow = tuple[str, int, str, str, str, str, "int | None", str]

_COLUMN = f"""
SELECT {CARD_COLUMNS}, rank FROM issues INDEXED BY issues_board
WHERE project_id = ? AND stage_id = ? AND deleted_at IS NULL
ORDER BY rank LIMIT ?
"""
_KEPT_COUNTS = """
SELECT c.stage_id, c.live FROM stages s JOIN stage_counts c ON c.stage_id = s.id
WHERE s.project_id = ?
"""
_COUNTS = """
SELECT i.stage_id, count(*) FROM issues i INDEXED BY issues_board
WHERE i.project_id = ? AND i.deleted_at IS NULL {where} GROUP BY i.stage_id
"""


def _tuples(conn: sqlite3.Connection, sql: str, params: Any) -> list[Any]:
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor.execute(sql, params).fetchall()


def column_cards(
    conn: sqlite3.Connection, project_id: str, stage_id: str, limit: int
) -> list[CardRow]:
    return _tuples(conn, _COLUMN, (project_id, stage_id, limit))


_COLUMN_JSON = """
SELECT json_group_array(json_object(
    'id', id, 'key', ? || '-' || number, 'number', number, 'title', title,
    'type', type, 'priority', priority, 'stage_id', stage_id,
    'assignees', json((SELECT json_group_array(user_id) FROM
                       (SELECT user_id FROM issue_assignees WHERE issue_id = c.id
                        ORDER BY user_id))),
    'estimate', estimate, 'rank', rank))
FROM (SELECT i.id, i.number, i.title, i.type, i.priority, i.stage_id, i.estimate, i.rank
      FROM issues i INDEXED BY issues_board
      WHERE i.project_id = ? AND i.stage_id = ? AND i.deleted_at IS NULL {where}
      ORDER BY i.rank LIMIT ?) AS c
"""


def column_json(
    conn: sqlite3.Connection,
    project_key: str,
    project_id: str,
    stage_id: str,
    limit: int,
    where: Sql | None = None,
) -> str:
    """A column's first `limit` cards as a JSON array (the Card shape), built by SQLite.

    The board's hot path: 2,000 cards rendered in C cost about what fetching the
    rows costs, where building and dumping 2,000 pydantic models cost more than the
    SQL (measured; bench/cases_boards.py). The aggregate keeps the ranked order of
    its LIMIT subquery.
    """
    text, args = (where.text, where.args) if where is not None else ("", [])
    sql = _COLUMN_JSON.format(where=f"AND {text}" if text else "")
    row = conn.execute(sql, [project_key, project_id, stage_id, *args, limit]).fetchone()
    return str(row[0])


def column_counts(
    conn: sqlite3.Connection, project_id: str, where: Sql | None = None
) -> dict[str, int]:
    """Live issues per column: kept by triggers (stage_counts), or counted under a filter."""
    if where is None or not where.text:
        rows = conn.execute(_KEPT_COUNTS, (project_id,))
        return {row[0]: row[1] for row in rows}
    sql = _COUNTS.format(where=f"AND {where.text}")
    return {row[0]: row[1] for row in conn.execute(sql, [project_id, *where.args])}


def query_predicate(conn: sqlite3.Connection, query: Query, ctx: FilterContext) -> Sql:
    """The board's `q`: its filters and words as one predicate on `issues i` (sorts are
    ignored: a column is in rank order). Words go through the FTS index, once."""
    from tracker.domain.fts import build_match
    from tracker.storage.search_filters import Sql, compile_filter

    parts = [compile_filter(conn, item, ctx) for item in query.filters]
    match = build_match(query.terms)
    if match.positive is not None:
        parts.append(
            Sql(
                "i.row_id IN (SELECT rowid FROM issue_search WHERE issue_search MATCH ?)",
                [match.positive],
            )
        )
    if match.negative is not None:
        parts.append(
            Sql(
                "i.row_id NOT IN (SELECT rowid FROM issue_search WHERE issue_search MATCH ?)",
                [match.negative],
            )
        )
    return Sql(" AND ".join(p.text for p in parts), [a for p in parts for a in p.args])


def sprint_cards(conn: sqlite3.Connection, sprint_id: str) -> list[CardRow]:
    """Every live issue of a sprint, by column rank (sprints hold tens to hundreds)."""
    return _tuples(
        conn,
        f"""
        SELECT {CARD_COLUMNS}, rank FROM issues
        WHERE sprint_id = ? AND deleted_at IS NULL ORDER BY rank, number
        """,
        (sprint_id,),
    )


def assignees_of(conn: sqlite3.Connection, issue_ids: Sequence[str]) -> dict[str, list[str]]:
    """issue id -> assignee user ids, for a page of cards (chunked under SQLite's limit)."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(issue_ids), 500):
        chunk = issue_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = _tuples(
            conn,
            f"SELECT issue_id, user_id FROM issue_assignees WHERE issue_id IN ({marks}) "
            "ORDER BY issue_id, user_id",
            chunk,
        )
        for issue_id, user_id in rows:
            found.setdefault(issue_id, []).append(user_id)
    return found


# --- column ranks ------------------------------------------------------------------------


def rank_neighbour(
    conn: sqlite3.Connection,
    project_id: str,
    stage_id: str,
    rank: str,
    exclude: int,
    *,
    below: bool,
) -> str | None:
    """The rank just below (or above) `rank` in a column, ignoring the card being moved."""
    op, order = ("<", "DESC") if below else (">", "ASC")
    row = conn.execute(
        f"""
        SELECT rank FROM issues INDEXED BY issues_board
        WHERE project_id = ? AND stage_id = ? AND deleted_at IS NULL AND rank {op} ?
          AND row_id != ?
        ORDER BY rank {order} LIMIT 1
        """,
        (project_id, stage_id, rank, exclude),
    ).fetchone()
    return None if row is None else str(row[0])


def last_rank(conn: sqlite3.Connection, project_id: str, stage_id: str) -> str | None:
    """The largest rank in a column, soft-deleted issues included (a restore keeps its rank
    and must not collide)."""
    row = conn.execute(
        "SELECT max(rank) FROM issues WHERE project_id = ? AND stage_id = ?", (project_id, stage_id)
    ).fetchone()
    return None if row is None else row[0]


# --- backlog ------------------------------------------------------------------------------
# backlog_key = backlog_rank, or a key derived from the number (migration 0003).


def virtual_key(number: int) -> str:
    """The backlog key of an issue that was never moved (must match migration 0003)."""
    return "z" + format(number, "026d")


def backlog_page(
    conn: sqlite3.Connection, project_id: str, after: str, limit: int
) -> list[CardRow]:
    """Open, live issues without a sprint, by backlog key, after the cursor's key."""
    return _tuples(
        conn,
        f"""
        SELECT {CARD_COLUMNS}, backlog_key AS rank FROM issues INDEXED BY issues_backlog
        WHERE project_id = :project AND deleted_at IS NULL AND sprint_id IS NULL
          AND resolved_at IS NULL AND backlog_key > :after
          AND stage_id NOT IN (SELECT id FROM stages WHERE project_id = :project
                               AND category = 'done')
        ORDER BY backlog_key LIMIT :limit
        """,
        {"project": project_id, "after": after, "limit": limit},
    )


def key_neighbour(
    conn: sqlite3.Connection, project_id: str, key: str, exclude: int, *, below: bool
) -> str | None:
    """The nearest backlog key below/above `key` among ALL the project's issues (so a new
    key never equals another issue's, even one now in a sprint or deleted)."""
    op, order = ("<", "DESC") if below else (">", "ASC")
    row = conn.execute(
        f"""
        SELECT backlog_key FROM issues INDEXED BY issues_backlog_key
        WHERE project_id = ? AND backlog_key {op} ? AND row_id != ?
        ORDER BY backlog_key {order} LIMIT 1
        """,
        (project_id, key, exclude),
    ).fetchone()
    return None if row is None else str(row[0])


def next_number(conn: sqlite3.Connection, project_id: str) -> int:
    row = conn.execute("SELECT next_number FROM projects WHERE id = ?", (project_id,)).fetchone()
    return int(row[0])


def set_backlog_rank(conn: sqlite3.Connection, row_id: int, rank: str) -> int:
    """Reposition one backlog issue; returns its new version (one row: no renumbering)."""
    row = conn.execute(
        "UPDATE issues SET backlog_rank = ?, version = version + 1 WHERE row_id = ? "
        "RETURNING version",
        (rank, row_id),
    ).fetchone()
    return int(row[0])


# --- the web UI's board page ---------------------------------------------------------------

#: Swim lane keys, one fixed SQL expression per choice (never user text): the card's
#: priority, its first assignee (by user id), or its nearest epic ancestor.
LANE_SQL = {
    "priority": "i.priority",
    "assignee": "(SELECT min(user_id) FROM issue_assignees WHERE issue_id = i.id)",
    "epic": """(WITH RECURSIVE up(id, parent_id, type, depth) AS (
        SELECT p.id, p.parent_id, p.type, 1 FROM issues p WHERE p.id = i.parent_id
        UNION ALL
        SELECT p.id, p.parent_id, p.type, up.depth + 1 FROM issues p JOIN up ON p.id = up.parent_id
        WHERE up.type <> 'epic' AND up.depth < 32)
        SELECT id FROM up WHERE type = 'epic' LIMIT 1)""",
}
_PAGE_COLUMN = """
SELECT i.number, i.title, i.type, i.priority, {lane} FROM issues i INDEXED BY issues_board
WHERE i.project_id = ? AND i.stage_id = ? AND i.deleted_at IS NULL {where}
ORDER BY i.rank LIMIT ?
"""

#: (number, title, type, priority, lane key or None): what a card on the page shows.
PageCardRow = tuple[int, str, str, str, "str | None"]


def column_page_cards(
    conn: sqlite3.Connection,
    project_id: str,
    stage_id: str,
    limit: int,
    where: Sql | None = None,
    lane: str | None = None,
) -> list[PageCardRow]:
    """A column's first `limit` cards as plain tuples, for the HTML board.

    The same index range scan as `column_json`, but only what a card shows: the page
    writes HTML from tuples, where decoding the API's JSON cost more than the SQL.
    """
    text, args = (where.text, where.args) if where is not None else ("", [])
    sql = _PAGE_COLUMN.format(
        lane=LANE_SQL[lane] if lane else "NULL",
        where=f"AND {text}" if text else "",
    )
    return _tuples(conn, sql, [project_id, stage_id, *args, limit])


def epic_labels(conn: sqlite3.Connection, issue_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """issue id -> (number, title) for the epics that name swim lanes."""
    if not issue_ids:
        return {}
    marks = ",".join("?" * len(issue_ids))
    rows = _tuples(conn, f"SELECT id, number, title FROM issues WHERE id IN ({marks})",
                   list(issue_ids))  # fmt: skip
    return {issue_id: (number, title) for issue_id, number, title in rows}
