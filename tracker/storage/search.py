"""Search: a parsed query -> parameterized SQL over `issues` and `issue_search`, with bounded work.

The FTS5 `MATCH` string comes only from `tracker.domain.fts` (quoted tokens and
the operators it emits); filters come from `search_filters` (bound parameters,
identifiers from constants). Visibility (`i.project_id IN (...)`) and
`deleted_at IS NULL` are in the same WHERE as everything else, before LIMIT.

Why plans: bm25 scores every row it is asked to rank (~1.2 µs each), so a naive
`MATCH … ORDER BY bm25 LIMIT 20` costs 0.2-1.75 s for a word in most of a
million issues, and a filter on top does not shrink the work (issue 5). So the
work is bounded by the shape of the query, measured cheaply first:

- `plain`: no positive words. Walk issues in sort order (issues_updated,
  issues_created, issues_number indexes); filters and negated words (one FTS
  lookup per row) are checked along the way.
- `exact`: the words match at most SCORE_CAP issues. A probe counts them in the
  FTS doclist, newest first, without scoring; then every match is scored.
- `filtered`: broad words, but the filters match at most FILTER_CAP issues: walk
  those and ask the index about each one (`MATCH ? AND rowid = i.row_id`).
- `window`: broad words and broad filters. Only the newest SCORE_CAP word
  matches (rowid above the probe's floor) are ranked. The trade-off, on
  purpose: for a word in more than SCORE_CAP issues, an older issue can rank
  below its due place or not at all; the newest matches are ranked exactly, and
  the answer comes in tens of milliseconds instead of seconds.
- `walk`: broad words sorted by a column: walk issues in that order and check
  each against the index until the page is full.

Pagination is keyset in every plan: the cursor holds the plan, the window floor
and the last row's sort values with its row id, so page 2 ranks the same window.
Scores are bm25 numbers; an index change between pages (a new issue) can move
a row across the page boundary, as with any relevance pagination.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.domain.fts import MatchPlan, build_match
from tracker.domain.query import Query, SortKey
from tracker.storage.issues import ISSUE_VIEW
from tracker.storage.search_filters import (
    PRIORITY_RANK,
    FilterContext,
    Sql,
    compile_filter,
)

SCORE_CAP = 20_000  # rows bm25 may score for one page: ~25 ms at 1.2 µs each
FILTER_CAP = 5_000  # filter matches small enough to check one by one against the index
#: bm25 weights of (title, description, comments): the title counts most (SPEC §5).
SCORE = "bm25(issue_search, 5.0, 1.0, 0.5)"
SORT_COLUMNS = {
    "updated": "i.updated_at",
    "created": "i.created_at",
    "number": "i.number",
    "priority": PRIORITY_RANK,
    "relevance": SCORE,
}
#: Sorts an index serves in order (project scope), so a walk can stop at the page size.
INDEXED_SORTS = frozenset({"updated", "created", "number"})
PLANS = frozenset({"plain", "exact", "filtered", "window", "walk"})


@dataclass(frozen=True)
class Position:
    """Where a page ended: the plan, the window floor, and the last row's sort values + row id."""

    plan: str
    floor: int | None
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SearchSpec:
    query: Query
    ctx: FilterContext
    limit: int
    after: Position | None = None


@dataclass
class SearchPage:
    row_ids: list[int]
    next: Position | None
    plan: str
    match: str | None  # the positive MATCH expression, for highlighting


def effective_sorts(query: Query) -> tuple[SortKey, ...]:
    """The query's sorts; relevance only where there are positive words (else updated)."""
    words = any(not t.negated for t in query.terms)
    sorts = tuple(s for s in query.sorts if words or s.key != "relevance")
    if sorts:
        return sorts
    return (SortKey(key="relevance" if words else "updated", descending=True),)


def search(conn: sqlite3.Connection, spec: SearchSpec) -> SearchPage:
    """One page of row ids in order, by the cheapest plan that answers the query."""
    match = build_match(spec.query.terms)
    where = _where(conn, spec, match)
    sorts = effective_sorts(spec.query)
    if spec.after is not None:
        plan, floor = spec.after.plan, spec.after.floor
    else:
        plan, floor = _choose(conn, spec, match, where, sorts)
    rows = _run(conn, plan, floor, match, where, sorts, spec)
    more = len(rows) > spec.limit
    rows = rows[: spec.limit]
    next_position = Position(plan, floor, tuple(rows[-1][1:])) if more and rows else None
    return SearchPage([r[0] for r in rows], next_position, plan, match.positive)


def _where(conn: sqlite3.Connection, spec: SearchSpec, match: MatchPlan) -> Sql:
    """Visibility, liveness, filters and negated-only words: one conjunction on `issues i`."""
    ids = spec.ctx.project_ids
    parts = [
        Sql("i.project_id = ?", [ids[0]])
        if len(ids) == 1
        else Sql("i.project_id IN (SELECT value FROM json_each(?))", [json.dumps(ids)]),
        Sql("i.deleted_at IS NULL"),
    ]
    parts += [compile_filter(conn, item, spec.ctx) for item in spec.query.filters]
    if match.negative:
        parts.append(Sql(
            "NOT EXISTS (SELECT 1 FROM issue_search n WHERE n.issue_search MATCH ? "
            "AND n.rowid = i.row_id)", [match.negative],
        ))  # fmt: skip
    return Sql(" AND ".join(p.text for p in parts), [a for p in parts for a in p.args])


def _choose(
    conn: sqlite3.Connection, spec: SearchSpec, match: MatchPlan, where: Sql,
    sorts: Sequence[SortKey],
) -> tuple[str, int | None]:  # fmt: skip
    """Pick the plan (module docstring) with at most two cheap, bounded probes."""
    if match.positive is None:
        return "plain", None
    floor = _text_floor(conn, match.positive)
    if floor is None:
        return "exact", None
    if spec.query.filters and _filter_count(conn, where) <= FILTER_CAP:
        return "filtered", None
    if sorts[0].key in INDEXED_SORTS and len(spec.ctx.project_ids) == 1:
        return "walk", None
    return "window", floor


def _text_floor(conn: sqlite3.Connection, positive: str) -> int | None:
    """The rowid below the newest SCORE_CAP matches, or None when there are no more than that.

    Reads rowids from the doclist newest first; no row is scored or joined.
    """
    row = conn.execute(
        "SELECT rowid FROM issue_search WHERE issue_search MATCH ? "
        "ORDER BY rowid DESC LIMIT 1 OFFSET ?",
        (positive, SCORE_CAP),
    ).fetchone()
    return None if row is None else int(row[0])


def _filter_count(conn: sqlite3.Connection, where: Sql) -> int:
    """How many issues the filters match, counting no further than FILTER_CAP + 1."""
    row = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM issues i WHERE {where.text} LIMIT ?)",
        [*where.args, FILTER_CAP + 1],
    ).fetchone()
    return int(row[0])


def _order(sorts: Sequence[SortKey]) -> list[tuple[str, bool]]:
    """(expression, descending in SQL) per key, then the row id as the tie-break."""
    keys = []
    for sort in sorts:
        # bm25 is lower for better matches, so "most relevant first" is ascending
        sql_desc = not sort.descending if sort.key == "relevance" else sort.descending
        keys.append((SORT_COLUMNS[sort.key], sql_desc))
    keys.append(("i.row_id", sorts[0].descending))  # ties: newest first when "best first"
    return keys


def _keyset(keys: list[tuple[str, bool]], values: Sequence[Any]) -> Sql:
    """Rows strictly after `values` in the order of `keys` (mixed directions allowed)."""
    ors, args = [], []
    for n, (expr, desc) in enumerate(keys):
        equal = [f"{e} = ?" for e, _ in keys[:n]]
        ors.append("(" + " AND ".join([*equal, f"{expr} {'<' if desc else '>'} ?"]) + ")")
        args += [*values[:n], values[n]]
    return Sql("(" + " OR ".join(ors) + ")", args)


def _run(
    conn: sqlite3.Connection, plan: str, floor: int | None, match: MatchPlan, where: Sql,
    sorts: Sequence[SortKey], spec: SearchSpec,
) -> list[tuple[Any, ...]]:  # fmt: skip
    keys = _order(sorts)
    columns = ", ".join(expr for expr, _ in keys)
    conditions = [where]
    if spec.after is not None:
        if len(spec.after.values) != len(keys):
            raise ValueError("cursor shape")
        conditions.append(_keyset(keys, spec.after.values))
    source, match_args = _source(plan, floor, match)
    order = ", ".join(f"{expr} {'DESC' if desc else 'ASC'}" for expr, desc in keys)
    sql = (
        f"SELECT i.row_id, {columns} FROM {source} "
        f"WHERE {' AND '.join(c.text for c in conditions)} ORDER BY {order} LIMIT ?"
    )
    args = [*match_args, *(a for c in conditions for a in c.args), spec.limit + 1]
    return [tuple(row) for row in conn.execute(sql, args)]


def _source(plan: str, floor: int | None, match: MatchPlan) -> tuple[str, list[Any]]:
    """The FROM clause (and its leading parameters) of each plan."""
    if plan == "plain":
        return "issues i", []
    if plan in ("exact", "window"):
        bound = " AND issue_search.rowid > ?" if floor is not None else ""
        return (
            "issue_search JOIN issues i ON i.row_id = issue_search.rowid "
            f"AND issue_search MATCH ?{bound}",
            [match.positive] + ([floor] if floor is not None else []),
        )
    # filtered / walk: issues drive (CROSS JOIN keeps them outside), one index lookup per row
    return (
        "issues i CROSS JOIN issue_search ON issue_search.rowid = i.row_id "
        "AND issue_search MATCH ?",
        [match.positive],
    )


# --- what a page needs besides the plan -----------------------------------------------------

#: Private-use characters around matches in highlight(); the service turns them into <mark>.
MARKS = ("\ue000", "\ue001")


def visible_projects(
    conn: sqlite3.Connection, user_id: str | None, see_all: bool
) -> list[sqlite3.Row]:
    """Live projects the caller may read: all (org admins), else org-visible or member of."""
    if see_all:
        return conn.execute(
            "SELECT id, key FROM projects WHERE deleted_at IS NULL ORDER BY key"
        ).fetchall()
    return conn.execute(
        """
        SELECT id, key FROM projects p
        WHERE p.deleted_at IS NULL
          AND (p.visibility = 'org'
               OR EXISTS (SELECT 1 FROM project_members m
                          WHERE m.project_id = p.id AND m.user_id = ?))
        ORDER BY key
        """,
        (user_id,),
    ).fetchall()


def users_by_email(conn: sqlite3.Connection, emails: Sequence[str]) -> list[sqlite3.Row]:
    """Accounts by email, case-insensitively (system database)."""
    return conn.execute(
        "SELECT id, email FROM users WHERE email COLLATE NOCASE IN "
        "(SELECT value FROM json_each(?))",
        (json.dumps(list(emails)),),
    ).fetchall()


def issue_rows(conn: sqlite3.Connection, row_ids: Sequence[int]) -> list[sqlite3.Row]:
    """The page's issues as the issue endpoints read them (ISSUE_VIEW), in page order."""
    rows = conn.execute(
        ISSUE_VIEW + " WHERE i.row_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(row_ids)),),
    ).fetchall()
    order = {row_id: n for n, row_id in enumerate(row_ids)}
    return sorted(rows, key=lambda row: order[row["row_id"]])


def highlights(
    conn: sqlite3.Connection, positive: str, row_ids: Sequence[int]
) -> dict[int, tuple[str, str, str]]:
    """row id -> (title, description snippet, comments snippet) with MARKS around matches.

    One index lookup per row of the page, so highlighting never scales with the hits.
    """
    start, end = MARKS
    rows = conn.execute(
        """
        SELECT rowid, highlight(issue_search, 0, ?, ?),
               snippet(issue_search, 1, ?, ?, '…', 32), snippet(issue_search, 2, ?, ?, '…', 24)
        FROM issue_search
        WHERE issue_search MATCH ? AND rowid IN (SELECT value FROM json_each(?))
        """,
        (start, end, start, end, start, end, positive, json.dumps(list(row_ids))),
    ).fetchall()
    return {int(row[0]): (row[1] or "", row[2] or "", row[3] or "") for row in rows}
