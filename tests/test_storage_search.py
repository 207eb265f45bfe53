"""The search compiler and its plans on a real tenant file, against a naive reference query.

The caps are lowered (SCORE_CAP 5, FILTER_CAP 3) so every plan runs on a few dozen
issues; each plan's answer is compared with the plain `MATCH ... ORDER BY bm25`
query it replaces, restricted the way the plan documents.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tracker.domain.query import parse_query
from tracker.storage import bulk
from tracker.storage import search as search_sql
from tracker.storage.migrate import apply_migrations
from tracker.storage.search_filters import FilterContext, stamp
from tracker.storage.search_index import index_issue, unindex_issue

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
P1, P2 = "00000000-0000-7000-8000-000000000001", "00000000-0000-7000-8000-000000000002"
USER = "00000000-0000-7000-8000-0000000000aa"
SCORE = "bm25(issue_search, 5.0, 1.0, 0.5)"


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(tmp_path / "tracker.db", isolation_level=None)
    db.row_factory = sqlite3.Row
    apply_migrations(db, "tenant")
    for project_id, key in ((P1, "WEB"), (P2, "OPS")):
        db.execute(
            "INSERT INTO projects (id, key, name, created_at, updated_at) "
            "VALUES (?, ?, ?, 'x', 'x')",
            (project_id, key, key),
        )
        for n, (name, category) in enumerate((("Open", "todo"), ("Done", "done"))):
            db.execute(
                "INSERT INTO stages VALUES (?, ?, ?, ?, ?, 'x', 'x')",
                (f"{key}-{name}", project_id, name, category, n),
            )
    yield db
    db.close()


def add_issues(
    conn: sqlite3.Connection, project_id: str, titles: list[str], **fields: Any
) -> list[int]:
    """Insert issues through the bulk path (one transaction); returns their row ids."""
    key = "WEB" if project_id == P1 else "OPS"
    row_id, comment_row, _ = bulk.next_row_ids(conn)
    first = row_id, bulk.reserve_numbers(conn, project_id, len(titles))
    issues = [
        bulk.BulkIssue(
            f"issue-{first[0] + n}", title, "", "task", "normal", f"{key}-Open",
            f"a{first[0] + n}", USER, 0, stamp(NOW.replace(day=1 + n % 28)), stamp(NOW),
            None, "",
        )
        for n, title in enumerate(titles)
    ]  # fmt: skip
    conn.execute("BEGIN")
    first_rows = (*first, comment_row)
    bulk.insert_issues(conn, project_id, first_rows, issues, [], bulk.encode(issues, []))
    conn.execute("COMMIT")
    return [first[0] + n for n in range(len(titles))]


def run(
    conn: sqlite3.Connection, q: str, limit: int = 50, projects: tuple[str, ...] = (P1,),
    after: search_sql.Position | None = None,
) -> search_sql.SearchPage:  # fmt: skip
    ctx = FilterContext(projects, USER, {}, NOW)
    return search_sql.search(conn, search_sql.SearchSpec(parse_query(q), ctx, limit, after))


def naive(conn: sqlite3.Connection, match: str, extra: str = "", args: tuple = ()) -> list[int]:
    """The raw-stack answer: score every match (what the plans avoid at scale)."""
    rows = conn.execute(
        f"SELECT i.row_id FROM issue_search JOIN issues i ON i.row_id = issue_search.rowid "
        f"WHERE issue_search MATCH ? AND i.deleted_at IS NULL {extra} "
        f"ORDER BY {SCORE}, i.row_id DESC",
        (match, *args),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_sql, "SCORE_CAP", 5)
    monkeypatch.setattr(search_sql, "FILTER_CAP", 3)
    monkeypatch.setattr(search_sql, "JOIN_CAP", 10)
    monkeypatch.setattr(search_sql, "DENSE_MIN_ISSUES", 10)


@pytest.fixture
def corpus(conn: sqlite3.Connection) -> dict[str, list[int]]:
    """WEB: 32 'common' issues (every 4th also 'middling', 2 critical), 3 'rare'; OPS: 3."""
    titles = [
        ("common middling " if n % 4 == 0 else "common ") + "filler " * (n % 7) for n in range(32)
    ]
    common = add_issues(conn, P1, titles)
    conn.execute("UPDATE issues SET priority = 'critical' WHERE row_id IN (?, ?)", common[3:5])
    rare = add_issues(conn, P1, ["rare common", "rare thing", "rare other"])
    ops = add_issues(conn, P2, ["common ops"] * 3)
    return {"common": common, "middling": common[::4], "rare": rare, "ops": ops}


def test_few_matches_are_scored_exactly(
    conn: sqlite3.Connection, corpus: dict[str, Any], small_caps: None
) -> None:
    page = run(conn, "rare")
    assert page.plan == "exact"
    assert page.row_ids == naive(conn, '"rare"', "AND i.project_id = ?", (P1,))
    assert sorted(page.row_ids) == corpus["rare"]


def test_broad_words_rank_only_a_window_of_the_newest_matches(
    conn: sqlite3.Connection, corpus: dict[str, Any], small_caps: None
) -> None:
    page = run(conn, "middling", limit=2)
    assert page.plan == "window" and page.bound is not None
    expected = naive(conn, '"middling"', "AND i.project_id = ? AND i.row_id > ?", (P1, page.bound))
    assert len(expected) >= 3 and page.row_ids == expected[:2]
    assert all(r in corpus["middling"] for r in expected)
    oldest = run(conn, "middling sort:created-asc", limit=2)
    assert oldest.plan == "window_old" and oldest.bound is not None
    assert oldest.row_ids == corpus["middling"][:2]
    whole = run(conn, "middling", limit=50)  # the window holds less than a page: widened
    assert whole.bound is None and sorted(whole.row_ids) == corpus["middling"]


def test_a_word_in_most_issues_lists_the_newest_matches(
    conn: sqlite3.Connection, corpus: dict[str, Any], small_caps: None
) -> None:
    page = run(conn, "common", limit=4)
    assert page.plan == "recent"
    newest_web = sorted(corpus["common"] + corpus["rare"][:1], reverse=True)[:4]
    assert page.row_ids == newest_web
    assert run(conn, "common middling").plan == "window"  # one informative word: bm25 again


def test_broad_words_with_narrow_filters_check_each_filtered_issue(
    conn: sqlite3.Connection, corpus: dict[str, Any], small_caps: None
) -> None:
    page = run(conn, "common priority:critical")
    assert page.plan == "filtered"
    assert page.row_ids == naive(conn, '"common"', "AND i.priority = 'critical'")
    assert sorted(page.row_ids) == corpus["common"][3:5]
    by_number = run(conn, "common project:ops sort:number", projects=(P1, P2))
    assert by_number.plan == "filtered" and by_number.row_ids == corpus["ops"]


def test_no_words_is_a_plain_walk_and_negation_excludes_matches(
    conn: sqlite3.Connection, corpus: dict[str, Any]
) -> None:
    page = run(conn, "-common")
    assert page.plan == "plain"
    assert sorted(page.row_ids) == corpus["rare"][1:]
    assert run(conn, "-common -rare").row_ids == []


def pages_of(conn: sqlite3.Connection, q: str, limit: int = 2) -> tuple[list[int], set[str]]:
    """Every row of a query, page by page; and the plans the pages used."""
    rows: list[int] = []
    plans, after = set(), None
    while True:
        page = run(conn, q, limit=limit, after=after)
        rows += page.row_ids
        plans.add(page.plan)
        if page.next is None:
            return rows, plans
        after = page.next


@pytest.mark.parametrize("caps", ["small", "default"])
def test_pages_join_up_in_every_plan(
    conn: sqlite3.Connection, corpus: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caps: str
) -> None:
    if caps == "small":
        monkeypatch.setattr(search_sql, "SCORE_CAP", 5)
        monkeypatch.setattr(search_sql, "FILTER_CAP", 3)
        monkeypatch.setattr(search_sql, "DENSE_MIN_ISSUES", 10)
    for q in ("common", "rare", "common priority:critical", "sort:number", "-common",
              "middling sort:priority sort:number-asc"):  # fmt: skip
        rows, plans = pages_of(conn, q)
        if "window" in plans:  # a bigger page widens the window: see the next test
            continue
        assert rows == run(conn, q, limit=100).row_ids, (q, plans)
        assert len(rows) == len(set(rows))


def test_window_pages_rank_the_whole_window(
    conn: sqlite3.Connection, corpus: dict[str, Any], small_caps: None
) -> None:
    first = run(conn, "middling", limit=2)
    rows, plans = pages_of(conn, "middling")
    assert plans == {"window"} and first.bound is not None
    assert rows == naive(
        conn, '"middling"', "AND i.project_id = ? AND i.row_id > ?", (P1, first.bound)
    )


def test_org_scope_and_deleted_issues(conn: sqlite3.Connection, corpus: dict[str, Any]) -> None:
    both = run(conn, "ops", projects=(P1, P2))
    assert sorted(both.row_ids) == corpus["ops"]
    assert run(conn, "ops", projects=(P1,)).row_ids == []
    conn.execute("UPDATE issues SET deleted_at = 'x' WHERE row_id = ?", (corpus["ops"][0],))
    assert sorted(run(conn, "ops", projects=(P1, P2)).row_ids) == corpus["ops"][1:]


def test_filters_compile_to_parameters_only(
    conn: sqlite3.Connection, corpus: dict[str, Any]
) -> None:
    hostile = 'status:"x\') OR 1=1 --" tag:"\'; DROP TABLE issues; --"'
    assert run(conn, hostile).row_ids == []
    assert conn.execute("SELECT count(*) FROM issues").fetchone()[0] == 38


def test_stamp_pads_years_and_rounds_up_to_the_millisecond() -> None:
    assert stamp(datetime(126, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)) == "0126-01-02T03:04:05.678Z"
    assert stamp(datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.001Z"
    assert (
        stamp(datetime(2026, 12, 31, 23, 59, 59, 999001, tzinfo=UTC)) == "2027-01-01T00:00:00.000Z"
    )


def test_bulk_index_matches_the_view_so_later_edits_stay_consistent(
    conn: sqlite3.Connection,
) -> None:
    """Comments written by the bulk path are indexed exactly as the view yields them."""
    row_id, first_comment, _ = bulk.next_row_ids(conn)
    bodies = [f"note {word}" for word in ("alpha", "beta", "gamma")]
    issue = bulk.BulkIssue(
        "bulk-1", "bulk title", "", "task", "normal", "WEB-Open", "a0", USER, 3, "x", "x",
        None, "\n".join(bodies),
    )  # fmt: skip
    comments = [
        bulk.BulkComment(f"c{n}", "bulk-1", USER, body, f"2026-01-0{n + 1}T00:00:00.000Z")
        for n, body in enumerate(bodies)
    ]
    conn.execute("BEGIN")
    documents = bulk.encode([issue], comments)
    bulk.insert_issues(conn, P1, (row_id, 1, first_comment), [issue], comments, documents)
    conn.execute("COMMIT")
    conn.execute("INSERT INTO issue_search (issue_search) VALUES ('integrity-check')")
    conn.execute("BEGIN")
    unindex_issue(conn, row_id)  # what an edit does: remove with the old text, add the new
    conn.execute("UPDATE comments SET body = 'note delta' WHERE id = 'c1'")
    index_issue(conn, row_id)
    conn.execute("COMMIT")
    conn.execute("INSERT INTO issue_search (issue_search) VALUES ('integrity-check')")
    assert run(conn, "gamma delta").row_ids == [row_id]
    assert run(conn, "beta").row_ids == []
