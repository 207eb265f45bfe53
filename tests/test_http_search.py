"""Search over HTTP: every operator on a fixed data set, visibility, freshness, hostile input.

The data set (project WEB unless noted; everything created by the org owner):

    WEB-1 Login crash on Safari   bug critical  Open         dev          ui          Sprint 1
    WEB-2 Crash report export     bug major     In Progress  owner        backend,wontfix
    WEB-3 Dark mode               feature minor Resolved     -            -           Sprint 2
    WEB-4 Search is slow          improv normal Closed       dev, owner   backend     parent WEB-1
    WEB-5 Old crash from last...  task normal   Open   (created 400 days, updated 10 days ago)
    WEB-6 Deleted crash           (soft-deleted)
    OPS-1 Crash in deploy pipeline              (org-visible project)
    SEC-1 Secret crash exploit                  (private project; the developer is a member)
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Api
from tests.issues_world import World, join, make_world
from tracker.domain.ids import iso, utcnow
from tracker.domain.models.search import encode_search_cursor
from tracker.http.keys import CORE


@pytest.fixture
async def world(api: Api, client: Any) -> World:
    world = await make_world(api, client)
    await build_data_set(world)
    return world


async def build_data_set(w: World) -> None:
    owner = w.owner
    await w.api.project(owner, w.org, key="OPS")
    await w.api.project(owner, w.org, key="SEC", visibility="private")
    await join(w, owner, w.org, w.developer, "SEC", "developer")
    for body in (
        {"name": "severity", "type": "enum", "options": ["low", "high"]},
        {"name": "Story points", "type": "number"},
        {"name": "deadline", "type": "date"},
        {"name": "reviewer", "type": "user"},
        {"name": "platforms", "type": "multi_enum", "options": ["ios", "android", "web"]},
    ):
        assert (await w.call("POST", w.url("/fields"), json=body))[0] == 201
    sprint1 = await _sprint(w, "Sprint 1")
    sprint2 = await _sprint(w, "Sprint 2")
    assert (await w.call("POST", w.url(f"/sprints/{sprint1}/start")))[0] == 200
    dev = w.developer["id"]
    await w.create(
        title="Login crash on Safari", description="The app crashes after login.", type="bug",
        priority="critical", assignees=[dev], tags=["ui"], sprint_id=sprint1,
        custom_fields={"severity": "high", "Story points": 5, "deadline": "2026-01-10",
                       "platforms": ["ios", "web"]},
    )  # fmt: skip
    await w.create(
        title="Crash report export", description='Export fails with a C++ error: NEAR(a b) "q"',
        type="bug", priority="major", status="In Progress", assignees=[owner["id"]],
        tags=["backend", "wontfix"], custom_fields={"severity": "low", "Story points": 2},
    )  # fmt: skip
    await w.create(
        title="Dark mode", description="Add a dark theme for night owls", type="feature",
        priority="minor", status="Resolved", sprint_id=sprint2, due_date="2026-02-01",
    )  # fmt: skip
    await w.create(
        title="Search is slow", description="The login page search takes 5-seconds",
        type="improvement", status="Closed", assignees=[dev, owner["id"]], tags=["backend"],
        parent="WEB-1", custom_fields={"reviewer": owner["id"], "platforms": ["android"]},
    )  # fmt: skip
    await w.create(title="Old crash from last year", description="ancient")
    await w.create(title="Deleted crash")
    status, _ = await w.call("POST", w.url("/issues/3/comments"),
                             json={"body": "users report a login freeze too"})  # fmt: skip
    assert status == 201
    assert (await w.call("DELETE", w.url("/issues/6")))[0] == 204
    await _backdate(w, 5, created_days=400, updated_days=10)
    await _create_in(w, "OPS", "Crash in deploy pipeline")
    await _create_in(w, "SEC", "Secret crash exploit")


async def _sprint(w: World, name: str) -> str:
    body = {"name": name, "starts_at": "2026-01-01", "ends_at": "2026-01-14"}
    status, sprint = await w.call("POST", w.url("/sprints"), json=body)
    assert status == 201, sprint
    return str(sprint["id"])


async def _create_in(w: World, key: str, title: str) -> None:
    status, body = await w.call("POST", w.url("/issues", project=key), json={"title": title})
    assert status == 201, body


async def _backdate(w: World, number: int, created_days: int, updated_days: int) -> None:
    """Age one issue in place (test data only: the API never sets these times)."""
    now = utcnow()
    created, updated = (
        iso(now - timedelta(days=created_days)),
        iso(now - timedelta(days=updated_days)),
    )
    core = w.client.app[CORE]

    def write(conn: Any) -> None:
        conn.execute(
            "UPDATE issues SET created_at = ?, updated_at = ? WHERE number = ? AND project_id = ?",
            (created, updated, number, w.project["id"]),
        )

    async with core.tenants.lease(w.org["id"]) as db:
        await db.write(write)


async def search(
    w: World, q: str, who: dict[str, Any] | None = None, org_wide: bool = False, **params: Any
) -> tuple[int, Any]:
    query = "&".join([f"q={quote(q)}", *(f"{k}={quote(str(v))}" for k, v in params.items())])
    base = f"/api/v1/orgs/{w.org['slug']}/issues" if org_wide else w.url("/issues")
    return await w.call("GET", f"{base}?{query}", who)


async def keys(
    w: World, q: str, who: dict[str, Any] | None = None, org_wide: bool = False
) -> list[str]:
    status, body = await search(w, q, who, org_wide)
    assert status == 200, (q, body)
    return [item["key"] for item in body["items"]]


def web(*numbers: int) -> list[str]:
    return [f"WEB-{n}" for n in numbers]


#: (query, expected keys in WEB as the owner; sorted unless the query sorts)
PROJECT_CASES: list[tuple[str, list[str]]] = [
    ("crash", web(1, 2, 5)),
    ('"dark theme"', web(3)),
    ('"theme dark"', []),
    ("cra*", web(1, 2, 5)),
    ("crash -export", web(1, 5)),
    ("-crash", web(3, 4)),
    ("login crash", web(1)),
    ("freeze", web(3)),  # in a comment
    ("C++", web(2)),
    ("NEAR(a", web(2)),
    ("status:Open", web(1, 5)),
    ('status:open,"In Progress"', web(1, 2, 5)),
    ('status:"in progress"', web(2)),
    ("-status:Open", web(2, 3, 4)),
    ("priority:critical,major", web(1, 2)),
    ("type:bug", web(1, 2)),
    ("type:FEATURE", web(3)),
    ("assignee:me", web(2, 4)),
    ("assignee:none", web(3, 5)),
    ("-assignee:me", web(1, 3, 5)),
    ("assignee:nobody@example.com", []),
    ("reporter:me", web(1, 2, 3, 4, 5)),
    ("reporter:none", []),
    ("tag:backend", web(2, 4)),
    ("tag:UI,wontfix", web(1, 2)),
    ("tag:none", web(3, 5)),
    ("-tag:wontfix", web(1, 3, 4, 5)),
    ('sprint:"Sprint 1"', web(1)),
    ("sprint:current", web(1)),
    ('sprint:"sprint 2"', web(3)),
    ("sprint:none", web(2, 4, 5)),
    ("parent:WEB-1", web(4)),
    ("parent:1", web(4)),
    ("project:web", web(1, 2, 3, 4, 5)),
    ("project:OPS", []),
    ("is:open", web(1, 2, 5)),
    ("is:closed", web(3, 4)),
    ("has:assignee", web(1, 2, 4)),
    ("has:sprint", web(1, 3)),
    ("has:due", web(3)),
    ("-has:due", web(1, 2, 4, 5)),
    ("created:>30d", web(1, 2, 3, 4)),
    ("created:<30d", web(5)),
    ("created:30d", web(1, 2, 3, 4)),
    ("created:500d", web(1, 2, 3, 4, 5)),
    ("updated:7d", web(1, 2, 3, 4)),
    ("updated:<=7d", web(5)),
    ("resolved:>1d", web(3, 4)),
    ("-resolved:>1d", web(1, 2, 5)),
    ("due:2026-02-01", web(3)),
    ("due:<2026-02-01", []),
    ("due:2026-01-01..2026-12-31", web(3)),
    ("severity:high", web(1)),
    ("severity:low,HIGH", web(1, 2)),
    ("-severity:high", web(2, 3, 4, 5)),
    ("severity:none", web(3, 4, 5)),
    ('"Story points":>3', web(1)),
    ('"story points":1..3', web(2)),
    ('"Story points":3', []),
    ("deadline:<2026-02-01", web(1)),
    ("deadline:2026-01-10", web(1)),
    ("reviewer:me", web(4)),
    ("platforms:ios", web(1)),
    ("platforms:android,web", web(1, 4)),
    ("crash is:open priority:critical", web(1)),
    ("sort:number-asc", web(1, 2, 3, 4, 5)),
    ("sort:number", web(1, 2, 3, 4, 5)),
    ("sort:number-desc", web(5, 4, 3, 2, 1)),
    ("sort:priority", web(1, 2, 5, 4, 3)),
    ("sort:created-asc", web(5, 1, 2, 3, 4)),
    ("crash sort:number-desc", web(5, 2, 1)),
]


async def test_each_operator_on_the_fixed_data_set(world: World) -> None:
    failures = []
    for q, expected in PROJECT_CASES:
        found = await keys(world, q)
        if "sort:" not in q:
            found = sorted(found)
        if found != expected:
            failures.append((q, expected, found))
    assert failures == []


async def test_title_outranks_description_and_comments(world: World) -> None:
    assert await keys(world, "login") == web(1, 4, 3)
    assert await keys(world, "login sort:relevance-asc") == web(3, 4, 1)


async def test_assignee_by_email_resolves_through_accounts(world: World) -> None:
    email = world.developer["email"].upper()
    assert sorted(await keys(world, f"assignee:{email}")) == web(1, 4)
    assert sorted(await keys(world, f"assignee:me,{email}")) == web(1, 2, 4)
    assert sorted(await keys(world, "assignee:me", who=world.developer)) == web(1, 4)


BAD_QUERIES = [
    ('"unterminated', "unterminated quote", 0),
    ("crash -", "expected a term after '-'", 6),
    ("priority:urgent", "unknown priority 'urgent'", 0),
    ("type:bug secret_note:acme", "unknown field 'secret_note'", 9),
    ("title:crash", "unknown field 'title'", 0),
    ('"Story points":many', "needs a number", 0),
    ("severity:>high", "takes no comparisons", 0),
    ("created:>yesterday", "bad date 'yesterday'", 9),
    ("a*", "at least 2 letters", 1),
    ("sort:sideways", "unknown sort key", 5),
]
#: FTS5 grammar in user text (docs/reliability.md §3.2): text, or a 400 that says where.
FTS_SYNTAX = [
    '"', "*", "NEAR", "AND", "OR", "NOT login", "login AND", "(login", "login)", "^login",
    "NEAR(a b)", "-login", "e-mail", "foo.bar", "#tag @user a/b foo? foo%", "rowid:1",
    '""', "{title body}", "-", "--", ":x", "x:", "\u0000", "a\u0000b", "\U0001f642", "ß*",
]  # fmt: skip


async def test_bad_queries_are_400_with_a_position(world: World) -> None:
    for q, detail, position in BAD_QUERIES:
        status, body = await search(world, q)
        assert status == 400, (q, body)
        assert body["type"].endswith("/query-syntax") and detail in body["detail"], q
        assert body["position"] == position, q


async def test_fts_syntax_is_text_or_a_400_never_a_500(world: World) -> None:
    for q in FTS_SYNTAX:
        for org_wide in (False, True):
            status, body = await search(world, q, org_wide=org_wide)
            assert status in (200, 400), (q, status, body)
            if status == 400:
                assert isinstance(body["position"], int), q
    assert await keys(world, "NOT login") == []  # "NOT" is a word here, and no issue has it
    assert "WEB-1" in await keys(world, "^login")


async def test_org_wide_sees_only_visible_projects(world: World) -> None:
    everyone = ["OPS-1", "SEC-1", *web(1, 2, 5)]
    assert sorted(await keys(world, "crash", org_wide=True)) == everyone
    assert sorted(await keys(world, "crash", who=world.developer, org_wide=True)) == everyone
    member_view = ["OPS-1", *web(1, 2, 5)]
    assert sorted(await keys(world, "crash", who=world.reporter, org_wide=True)) == member_view
    assert sorted(await keys(world, "secret", who=world.reporter, org_wide=True)) == []
    assert sorted(await keys(world, "project:SEC", who=world.reporter, org_wide=True)) == []
    assert await keys(world, "project:ops", org_wide=True) == ["OPS-1"]
    status, _ = await search(world, "crash", who=world.outsider, org_wide=True)
    assert status == 404
    status, _ = await search(world, "crash", who=world.reporter)  # WEB is org-visible
    assert status == 200


async def test_org_wide_never_returns_deleted_issues(world: World) -> None:
    assert "WEB-6" not in await keys(world, "deleted", org_wide=True)
    assert await keys(world, "deleted") == []


async def test_edits_and_deletes_show_at_once(world: World) -> None:
    status, _ = await world.call("PATCH", world.url("/issues/3"), json={"title": "Dark crash mode"})
    assert status == 200
    assert sorted(await keys(world, "crash")) == web(1, 2, 3, 5)
    assert await keys(world, "dark mode") == web(3)
    assert await keys(world, '"Dark mode"') == []
    assert (await world.call("DELETE", world.url("/issues/1")))[0] == 204
    assert sorted(await keys(world, "crash")) == web(2, 3, 5)
    assert (await world.call("POST", world.url("/issues/1/restore")))[0] == 200
    assert sorted(await keys(world, "crash")) == web(1, 2, 3, 5)


async def test_comment_edits_and_deletes_show_at_once(world: World) -> None:
    status, comment = await world.call(
        "POST", world.url("/issues/4/comments"), json={"body": "zebra stripes"}
    )
    assert status == 201
    assert await keys(world, "zebra") == web(4)
    path = world.url(f"/issues/4/comments/{comment['id']}")
    assert (await world.call("PATCH", path, json={"body": "giraffe spots"}))[0] == 200
    assert await keys(world, "zebra") == []
    assert await keys(world, "giraffe") == web(4)
    assert (await world.call("DELETE", path))[0] == 204
    assert await keys(world, "giraffe") == []
    assert await keys(world, "freeze") == web(3)  # the other comment is still indexed


async def test_highlight_marks_matches_and_escapes_html(world: World) -> None:
    await world.create(title="<img src=x onerror=alert(1)> crash", description="a crash & more")
    status, body = await search(world, "crash onerror", highlight="true")
    assert status == 200
    (hit,) = body["items"]
    assert hit["highlight"]["title"] == (
        "&lt;img src=x <mark>onerror</mark>=alert(1)&gt; <mark>crash</mark>"
    )
    assert hit["highlight"]["description"] == "a <mark>crash</mark> &amp; more"
    status, body = await search(world, "freeze", highlight="true")
    assert (
        body["items"][0]["highlight"]["comments"] == "users report a login <mark>freeze</mark> too"
    )
    status, body = await search(world, "freeze")
    assert body["items"][0]["highlight"] is None


async def test_results_have_the_issue_shape(world: World) -> None:
    _, body = await search(world, "login crash")
    (hit,) = body["items"]
    _, issue = await world.call("GET", world.url("/issues/1"))
    assert {k: v for k, v in hit.items() if k != "highlight"} == issue
    assert hit["custom_fields"]["Story points"] == 5


async def test_cursor_pages_through_relevance_and_columns(world: World) -> None:
    for n in range(7):
        await world.create(title=f"paging crash {n}", description="crash " * n)
    for q in ("crash", "crash sort:updated", "sort:priority", "crash sort:priority-asc"):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            status, body = await search(world, q, **params)
            assert status == 200, body
            seen += [item["key"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        status, body = await search(world, q, limit=50)
        assert seen == [item["key"] for item in body["items"]], q
        assert len(seen) == len(set(seen))


async def test_garbled_cursors_are_400(world: World) -> None:
    for cursor in ("garbage", "e30", "W10", "eyJxIjoiIn0", "%%%", "x" * 900, "bnVsbA"):
        status, body = await search(world, "crash", cursor=cursor)
        assert status == 400, (cursor, body)


async def test_a_cursor_from_another_query_is_refused(world: World) -> None:
    for n in range(3):
        await world.create(title=f"crash {n}")
    status, body = await search(world, "crash", limit=1)
    cursor = body["next_cursor"]
    status, body = await search(world, "crash is:open", limit=1, cursor=cursor)
    assert status == 400 and "another query" in body["detail"]


async def test_stored_state_is_untouched_by_search(world: World) -> None:
    before = await world.rows("SELECT count(*) AS n FROM changes")
    await keys(world, "crash'; DROP TABLE issues; --")
    await keys(world, "sort:updated")
    assert await world.rows("SELECT count(*) AS n FROM changes") == before
    assert await world.count("issues") == 8


async def test_limit_is_validated(world: World) -> None:
    for limit in ("0", "-1", "201", "abc"):
        status, _ = await search(world, "crash", org_wide=True, limit=limit)
        assert status == 422


async def test_forged_cursors_and_overlong_queries_are_400(world: World) -> None:
    mark = hashlib.sha256(b"crash").hexdigest()[:16]
    for state in (
        {"q": mark, "p": "plain", "b": None, "k": ["2026-01-01", 1]},  # no words: not "plain"
        {"q": mark, "p": "exact", "b": None, "k": [1.0]},
        {"q": mark, "p": "window", "b": "x", "k": [1.0, 1]},
        {"q": mark, "p": "exact", "b": None, "k": ["\ud800", 1]},
        {"q": mark, "p": "exact", "b": None, "k": [1.0, 2**70]},
    ):
        status, body = await search(world, "crash", cursor=encode_search_cursor(state))
        assert status == 400, (state, body)
    status, body = await search(world, "crash " * 300, org_wide=True)
    assert status == 400 and body["position"] == 1000
