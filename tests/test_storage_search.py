"""The search compiler and its plans on a real tenant file, against a naive reference query.

The caps are lowered (SCORE_CAP 5, FILTER_CAP 3) so every plan runs on a few dozen
issues; each plan's answer is compared with the plain `MATCH ... ORDER BY bm25`
query it replaces, restricted the way the plan documents.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tracker.domain.models.issues import PRIORITIES
from tracker.domain.query import parse_query
from tracker.services.changes import Actor
from tracker.services.imports import ImportComment, ImportIssue, import_issues
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
    first_row, first_number = (
        bulk.next_row_id(conn),
        bulk.reserve_numbers(conn, project_id, len(titles)),
    )
    rows = []
    for n, title in enumerate(titles):
        row = {c: None for c in bulk.ISSUE_COLUMNS} | {
            "row_id": first_row + n, "id": f"issue-{first_row + n}", "project_id": project_id,
            "number": first_number + n, "title": title, "description": "", "type": "task",
            "priority": "normal", "stage_id": f"{key}-Open", "rank": f"a{first_row + n}",
            "reporter": USER, "custom_fields": "{}", "time_spent": 0, "comment_count": 0,
            "created_at": stamp(NOW.replace(day=1 + n % 28)), "updated_at": stamp(NOW),
            "version": 1,
        }  # fmt: skip
        row.update(fields)
        rows.append(row)
    conn.execute("BEGIN")
    bulk.insert_issues(conn, rows, [])
    conn.execute("COMMIT")
    return [r["row_id"] for r in rows]


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
    row_id = bulk.next_row_id(conn)
    issue = {c: None for c in bulk.ISSUE_COLUMNS} | {
        "row_id": row_id, "id": "bulk-1", "project_id": P1, "number": 1, "title": "bulk title",
        "description": "", "type": "task", "priority": "normal", "stage_id": "WEB-Open",
        "rank": "a0", "reporter": USER, "custom_fields": "{}", "time_spent": 0,
        "comment_count": 3, "created_at": "x", "updated_at": "x", "version": 1,
    }  # fmt: skip
    comments = [
        {"id": f"c{n}", "issue_id": "bulk-1", "author": USER, "body": f"note {word}",
         "created_at": f"2026-01-0{n + 1}T00:00:00.000Z", "updated_at": "x", "version": 1}
        for n, word in enumerate(("alpha", "beta", "gamma"))
    ]  # fmt: skip
    conn.execute("BEGIN")
    bulk.insert_issues(conn, [issue], comments)
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


async def test_import_writes_rows_index_and_one_change_per_issue_and_comment(
    core_factory: Any,
) -> None:
    from tracker.domain.models.accounts import RegisterIn
    from tracker.domain.models.orgs import OrgIn, ProjectIn
    from tracker.domain.permissions import OrgRole
    from tracker.services import accounts, orgs, projects
    from tracker.services.access import Access, OrgRef
    from tracker.services.accounts import Principal

    core = await core_factory()
    user = await accounts.register(core, RegisterIn(email="imp@example.com", password="x" * 12))
    actor = Actor(user.id, "system")
    org = await orgs.create_org(core, Principal(user.id), OrgIn(name="Imp", slug="imp"), actor)
    access = Access(user.id, OrgRef(org.id, org.slug, org.name, OrgRole.OWNER))
    project = await projects.create_project(core, access, ProjectIn(name="W", key="WEB"), actor)
    issues = [
        ImportIssue(
            title=f"imported {n}", reporter=user.id, created_at=f"2025-01-0{n + 1}T00:00:00.000Z",
            updated_at="2025-02-01T00:00:00.000Z", stage="Resolved" if n else "Open",
            priority=PRIORITIES[n % 4],
            comments=(ImportComment(user.id, f"second {n}", "2025-03-02T00:00:00.000Z"),
                      ImportComment(user.id, f"first {n}", "2025-03-01T00:00:00.000Z")),
        )
        for n in range(5)
    ]  # fmt: skip
    assert await import_issues(core, org.id, project.id, actor, issues, batch_size=2) == 5

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        conn.execute("INSERT INTO issue_search (issue_search) VALUES ('integrity-check')")
        return {
            "numbers": [r[0] for r in conn.execute("SELECT number FROM issues ORDER BY number")],
            "changes": conn.execute(
                "SELECT entity, op, count(*) AS n, count(DISTINCT batch) AS batches FROM changes "
                "WHERE entity IN ('issue', 'comment') GROUP BY entity, op ORDER BY entity"
            ).fetchall(),
            "image": json.loads(conn.execute(
                "SELECT new FROM changes WHERE entity = 'issue' ORDER BY seq LIMIT 1"
            ).fetchone()[0]),
            "hits": conn.execute(
                "SELECT count(*) FROM issue_search WHERE issue_search MATCH 'first'"
            ).fetchone()[0],
            "comments": [r[0] for r in conn.execute(
                "SELECT comments FROM issue_search_source ORDER BY row_id LIMIT 1"
            )],
            # the issue history index: every issue and comment change names its issue
            "history": conn.execute(
                "SELECT count(*), count(DISTINCT ic.issue_id) FROM issue_changes ic "
                "JOIN changes c ON c.seq = ic.seq "
                "WHERE c.entity IN ('issue', 'comment') AND json_extract(c.meta, '$.issue') "
                "= ic.issue_id"
            ).fetchone(),
        }  # fmt: skip

    async with core.tenants.lease(org.id) as db:
        stored = await db.read(read)
    assert stored["numbers"] == [1, 2, 3, 4, 5]
    assert [tuple(r) for r in stored["changes"]] == [("comment", "create", 10, 3),
                                                    ("issue", "create", 5, 3)]  # fmt: skip
    assert stored["image"]["title"] == "imported 0" and stored["image"]["number"] == 1
    assert stored["hits"] == 5
    assert stored["comments"] == ["first 0\nsecond 0"]
    assert tuple(stored["history"]) == (15, 5)
