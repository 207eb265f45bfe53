"""Search: a parsed query -> parameterized SQL over `issues` and `issue_search`, with bounded work.

The FTS5 `MATCH` string comes only from `tracker.domain.fts` (quoted tokens and
the operators it emits); filters come from `search_filters` (bound parameters,
identifiers from constants). Visibility (`i.project_id IN (...)`) and
`deleted_at IS NULL` sit in the same WHERE as every filter, before LIMIT.

Why plans. Measured at 1,000,000 issues on the benchmark box: bm25 costs 2-4 µs
per scored row *plus* one pass over each term's whole doclist for its IDF (~100 ms
for a word in 97 % of issues), joining a match to its issue 0.5-3 µs, and one
FTS lookup by rowid 15-130 µs (with bm25 in such a lookup, the IDF pass repeats
per row). A naive `MATCH … ORDER BY bm25 LIMIT 20` therefore takes seconds for
a common word, and a project filter on top does not shrink it. So each query
gets the cheapest plan that answers it, chosen with probes that read rowids
from a doclist without scoring (~1 ms):

- `plain`: no positive words. Walk issues in sort order (issues_updated /
  issues_created / issues_number, or the *_all indexes org-wide); negated words
  are one FTS lookup per row that reaches the page.
- `exact`: the words match at most SCORE_CAP issues: every match is scored.
- `filtered`: broad words, but visibility and filters leave at most FILTER_CAP
  issues: those are checked against the index (no bm25), then the hits are
  scored in one pass. Exact.
- `recent`: relevance order, and every word is in more than half of the issues
  (and there are DENSE_MIN_ISSUES issues at least). Such a word tells issues
  apart by nothing but its frequency (FTS5 clamps its IDF to 1e-6), and ranking
  it means a pass over its whole doclist plus scoring every match; instead the
  newest matches come first, read straight off the doclist (~10 ms at 1M).
- `window` / `window_old`: everything else. Only matches above (below, for
  oldest-first sorts) a rowid bound are considered: the newest SCORE_CAP matches,
  widened by the inverse share of issues in scope so a small project still gets
  its share, but never more than JOIN_CAP matches joined. The trade-off, on
  purpose: for a word in more than SCORE_CAP issues an older issue can miss the
  page; what is returned is the exact ranking of the newest matches, in tens of
  milliseconds instead of seconds.

Pagination is keyset in every plan: the cursor holds the plan, the window bound
and the last row's sort values with its row id, so page 2 ranks the same
window. Scores are bm25 numbers; a new issue between pages can shift bm25's
statistics and move a row across a page boundary, as with any relevance paging.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.domain.fts import MatchPlan, build_match, quote
from tracker.domain.query import Query, SortKey, TextTerm
from tracker.errors import BadRequest
from tracker.storage.search_filters import PRIORITY_RANK, FilterContext, Sql, compile_filter

__all__ = ["Position", "SearchPage", "SearchSpec", "effective_sorts", "search"]

SCORE_CAP = 10_000  # matches bm25 may score for one page
FILTER_CAP = 1_000  # candidate issues few enough to check one by one (30-60 µs each)
JOIN_CAP = 60_000  # matches a window may join to their issues (~0.5 µs each, in rowid order)
DENSE = 0.5  # share of issues above which a word's IDF is clamped to ~0
DENSE_MIN_ISSUES = 50_000  # below this size, exact bm25 is cheap: never `recent`
#: bm25 weights of (title, description, comments): the title counts most (SPEC §5).
SCORE = "bm25(issue_search, 5.0, 1.0, 0.5, 5.0, 1.0, 0.5)"  # the *_cjk columns weigh the same
SORT_COLUMNS = {
    "updated": "i.updated_at",
    "created": "i.created_at",
    "number": "i.number",
    "priority": PRIORITY_RANK,
    "relevance": SCORE,
}
PLANS = frozenset({"plain", "exact", "filtered", "recent", "window", "window_old"})
#: Letters and digits: what the unicode61 tokenizer keeps (an upper bound needs no more).
_TOKEN = re.compile(r"[^\W_]+")
_FTS_JOIN = "issue_search JOIN issues i ON i.row_id = issue_search.rowid AND issue_search MATCH ?"


@dataclass(frozen=True)
class Position:
    """Where a page ended: the plan, its window bound, the last row's sort values + row id."""

    plan: str
    bound: int | None
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
    bound: int | None  # the window's rowid bound, when the plan has one
    match: str | None  # the positive MATCH expression, for highlighting


def effective_sorts(query: Query) -> tuple[SortKey, ...]:
    """The query's sorts; relevance only where there are positive words (else updated)."""
    words = any(not t.negated for t in query.terms)
    sorts = tuple(s for s in query.sorts if words or s.key != "relevance")
    if sorts:
        return sorts
    return (SortKey(key="relevance" if words else "updated", descending=True),)


def sort_key_count(query: Query, plan: str) -> int:
    """How many values a cursor of this query and plan carries."""
    return 1 if plan == "recent" else len(effective_sorts(query)) + 1


@dataclass
class _Job:
    """One search, compiled: what every plan needs."""

    conn: sqlite3.Connection
    spec: SearchSpec
    match: MatchPlan
    where: Sql
    sorts: tuple[SortKey, ...]


def search(conn: sqlite3.Connection, spec: SearchSpec) -> SearchPage:
    """One page of row ids in order, by the cheapest plan that answers the query."""
    match = build_match(spec.query.terms)
    job = _Job(conn, spec, match, _where(conn, spec, match), effective_sorts(spec.query))
    if spec.after is not None:
        plan, bound = spec.after.plan, spec.after.bound
    else:
        plan, bound = _choose(job)
    keys = _order(job.sorts, plan)
    rows = _run(job, plan, bound, keys)
    if bound is not None and spec.after is None and len(rows) <= spec.limit:
        bound = None  # the window holds less than a page: the phrase is rarer than its words
        rows = _run(job, plan, bound, keys)
    more = len(rows) > spec.limit
    rows = rows[: spec.limit]
    next_position = Position(plan, bound, tuple(rows[-1][1:])) if more and rows else None
    return SearchPage([r[0] for r in rows], next_position, plan, bound, match.positive)


def _where(conn: sqlite3.Connection, spec: SearchSpec, match: MatchPlan) -> Sql:
    """Visibility, liveness, filters and negated-only words: one conjunction on `issues i`."""
    ids = spec.ctx.project_ids
    parts = [
        Sql("i.project_id = ?", [ids[0]])
        if len(ids) == 1
        # unary +: several projects cannot use a per-project index for the order,
        # so let the planner walk the org-wide sort index instead
        else Sql("+i.project_id IN (SELECT value FROM json_each(?))", [json.dumps(ids)]),
        Sql("i.deleted_at IS NULL"),
    ]
    parts += [compile_filter(conn, item, spec.ctx) for item in spec.query.filters]
    if match.negative:
        parts.append(
            Sql(
                "NOT EXISTS (SELECT 1 FROM issue_search n WHERE n.issue_search MATCH ? "
                "AND n.rowid = i.row_id)",
                [match.negative],
            )
        )
    return Sql(" AND ".join(p.text for p in parts), [a for p in parts for a in p.args])


# --- choosing a plan ----------------------------------------------------------------------


def _choose(job: _Job) -> tuple[str, int | None]:
    """Pick the plan (module docstring) from cheap, bounded probes of single words."""
    if job.match.positive is None:
        return "plain", None
    low, high = _row_span(job.conn)
    newest: dict[str, int] = {}
    # rarest-looking first: a word in at most SCORE_CAP issues bounds the AND
    for piece in sorted(_pieces(job), key=len, reverse=True):
        nth = _nth_match(job.conn, piece, SCORE_CAP, newest_first=True)
        if nth is None:
            return "exact", None
        newest[piece] = nth
    if _candidates(job.conn, job.where) <= FILTER_CAP:
        return "filtered", None
    share = {piece: SCORE_CAP / max(1, high - nth) for piece, nth in newest.items()}
    first = job.sorts[0]
    big = high - low >= DENSE_MIN_ISSUES
    if first.key == "relevance" and first.descending and big and min(share.values()) > DENSE:
        return "recent", None
    rarest = min(share, key=lambda piece: share[piece])
    oldest_first = first.key != "relevance" and not first.descending
    if oldest_first:
        span = (_nth_match(job.conn, rarest, SCORE_CAP, newest_first=False) or high) - low
    else:
        span = high - newest[rarest]
    span = int(span * min(1 / _scope_share(job, high - low + 1), JOIN_CAP / SCORE_CAP))
    if oldest_first:
        return "window_old", (low + span if low + span < high else None)
    return "window", (high - span if high - span > low else None)


def _pieces(job: _Job) -> set[str]:
    """Single-word MATCH strings whose doclists bound the query: each token of each positive
    word or phrase (a phrase cannot match more issues than its rarest token), each prefix."""
    pieces = set()
    for term in job.spec.query.terms:
        if term.negated:
            continue
        if term.kind == "prefix":
            pieces.add(_single(term))
        else:
            pieces.update(quote(token) for token in _TOKEN.findall(term.text))
    return pieces or {job.match.positive or ""}


def _nth_match(conn: sqlite3.Connection, match: str, n: int, newest_first: bool) -> int | None:
    """The rowid of the (n+1)-th match from one end, or None when there are no more than n.

    Reads rowids from the doclist only: nothing is scored or joined.
    """
    order = "DESC" if newest_first else "ASC"
    row = conn.execute(
        "SELECT rowid FROM issue_search WHERE issue_search MATCH ? "
        f"ORDER BY rowid {order} LIMIT 1 OFFSET ?",
        (match, n),
    ).fetchone()
    return None if row is None else int(row[0])


def _candidates(conn: sqlite3.Connection, where: Sql) -> int:
    """How many issues visibility and filters leave, counting no further than FILTER_CAP + 1."""
    row = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM issues i WHERE {where.text} LIMIT ?)",
        [*where.args, FILTER_CAP + 1],
    ).fetchone()
    return int(row[0])


def _row_span(conn: sqlite3.Connection) -> tuple[int, int]:
    """The lowest and highest issue row ids (two rowid lookups: min and max together scan)."""
    row = conn.execute(
        "SELECT coalesce((SELECT min(row_id) FROM issues), 0), "
        "coalesce((SELECT max(row_id) FROM issues), 0)"
    )
    low, high = row.fetchone()
    return int(low), int(high)


def _single(term: TextTerm) -> str:
    positive = build_match([term]).positive
    assert positive is not None
    return positive


def _scope_share(job: _Job, total: int) -> float:
    """The share of all issues that are in the searched projects (numbers taken, cheaply)."""
    row = job.conn.execute(
        "SELECT coalesce(sum(next_number - 1), 0) FROM projects "
        "WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(job.spec.ctx.project_ids),),
    ).fetchone()
    return min(1.0, max(int(row[0]), 1) / max(total, 1))


# --- running a plan -----------------------------------------------------------------------


def _order(sorts: Sequence[SortKey], plan: str) -> list[tuple[str, bool]]:
    """(expression, descending in SQL) per key, then the row id as the tie-break."""
    if plan == "recent":  # the doclist's own order, so the FTS scan stops at the page
        return [("issue_search.rowid", True)]
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
    job: _Job, plan: str, bound: int | None, keys: list[tuple[str, bool]]
) -> list[tuple[Any, ...]]:
    prefix, source, where = _source(job, plan, bound, keys)
    conditions = [where]
    after = job.spec.after
    if after is not None:
        if len(after.values) != len(keys):
            raise BadRequest("invalid cursor")
        conditions.append(_keyset(keys, after.values))
    columns = ", ".join(expr for expr, _ in keys)
    order = ", ".join(f"{expr} {'DESC' if desc else 'ASC'}" for expr, desc in keys)
    sql = (
        f"{prefix.text} SELECT i.row_id, {columns} FROM {source.text} "
        f"WHERE {' AND '.join(c.text for c in conditions)} ORDER BY {order} LIMIT ?"
    )
    args = [*prefix.args, *source.args, *(a for c in conditions for a in c.args)]
    return [tuple(row) for row in job.conn.execute(sql, [*args, job.spec.limit + 1])]


def _source(
    job: _Job, plan: str, bound: int | None, keys: list[tuple[str, bool]]
) -> tuple[Sql, Sql, Sql]:
    """(WITH prefix, FROM clause, WHERE) of each plan, each with its parameters."""
    positive = job.match.positive
    if plan == "plain":
        return Sql(""), Sql("issues i"), job.where
    if plan == "filtered":
        return _filtered(job, keys)
    if plan in ("window", "window_old") and bound is not None:
        op = ">" if plan == "window" else "<"
        source = Sql(f"{_FTS_JOIN} AND issue_search.rowid {op} ?", [positive, bound])
        return Sql(""), source, job.where
    return Sql(""), Sql(_FTS_JOIN, [positive]), job.where


def _filtered(job: _Job, keys: list[tuple[str, bool]]) -> tuple[Sql, Sql, Sql]:
    """Candidates from the issues side, checked against the index without scoring; the hits
    are then scored in one pass over their rowid range (bm25 per lookup redoes its IDF)."""
    prefix = Sql(
        f"WITH cand AS MATERIALIZED (SELECT i.row_id FROM issues i WHERE {job.where.text} "
        "LIMIT ?), hit AS MATERIALIZED (SELECT rowid AS row_id FROM issue_search "
        "WHERE issue_search MATCH ? AND rowid IN (SELECT row_id FROM cand))",
        [*job.where.args, FILTER_CAP + 1, job.match.positive],
    )
    if any(expr == SCORE for expr, _ in keys):
        source = Sql(
            f"{_FTS_JOIN} AND issue_search.rowid BETWEEN (SELECT min(row_id) FROM hit) "
            "AND (SELECT max(row_id) FROM hit)",
            [job.match.positive],
        )
        return prefix, source, Sql("+i.row_id IN (SELECT row_id FROM hit)")
    return prefix, Sql("issues i"), Sql("i.row_id IN (SELECT row_id FROM hit)")
