"""Comments over HTTP: stored rows, comment_count, the search index and the change log.

The helpers at the top (a team with one person per role, issues, stored rows)
are shared by the relation and time-entry tests.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tracker.domain.models.comments import CommentIn
from tracker.domain.permissions import Permission
from tracker.errors import NotFound
from tracker.http.keys import CORE
from tracker.services import comments
from tracker.services.acting import act_as


@dataclass
class Team:
    """An org, a project `WEB` in it, and one user per role (plus an outsider)."""

    client: TestClient
    org: dict[str, Any]
    project: dict[str, Any]
    owner: dict[str, Any]  # org owner: project admin
    developer: dict[str, Any]
    reporter: dict[str, Any]  # plain org member in an org-visible project
    viewer: dict[str, Any]
    outsider: dict[str, Any]  # not in the org at all

    def url(self, path: str, project: str = "WEB") -> str:
        return f"/api/v1/orgs/{self.org['slug']}/projects/{project}{path}"

    async def rows(self, sql: str, *params: object) -> list[dict[str, Any]]:
        """Rows straight from the tenant database (what was really stored)."""
        core = self.client.app[CORE]
        async with core.tenants.lease(self.org["id"]) as db:
            result = await db.read(lambda conn: conn.execute(sql, params).fetchall())
        return [dict(row) for row in result]

    async def changes(self, entity: str) -> list[dict[str, Any]]:
        found = await self.rows("SELECT * FROM changes WHERE entity = ? ORDER BY seq", entity)
        for row in found:
            for name in ("old", "new", "meta"):
                row[name] = json.loads(row[name]) if row[name] is not None else None
        return found

    async def issue(self, title: str = "An issue", project: dict[str, Any] | None = None) -> int:
        """Create an issue in WEB (or `project`) as the owner."""
        return await make_issue(self.client, self.org, project or self.project, self.owner, title)

    async def issue_row(self, number: int, key: str = "WEB") -> dict[str, Any]:
        rows = await self.rows(
            "SELECT i.* FROM issues i JOIN projects p ON p.id = i.project_id "
            "WHERE p.key = ? AND i.number = ?",
            key,
            number,
        )
        return rows[0]


async def make_issue(
    client: TestClient, org: dict[str, Any], project: dict[str, Any], by: dict[str, Any], title: str
) -> int:
    """Create an issue through the issue endpoint; returns its number."""
    response = await client.post(
        f"/api/v1/orgs/{org['slug']}/projects/{project['key']}/issues",
        json={"title": title}, headers=by["headers"],
    )  # fmt: skip
    assert response.status == 201, await response.text()
    return int((await response.json())["number"])


async def join(
    client: TestClient,
    org: dict[str, Any],
    user: dict[str, Any],
    owner: dict[str, Any],
    project: dict[str, Any] | None = None,
    role: str | None = None,
) -> None:
    """Make `user` an org member, with an explicit project role when given."""
    base = f"/api/v1/orgs/{org['slug']}"
    response = await client.post(
        base + "/members", json={"user_id": user["id"], "role": "member"},
        headers=owner["headers"],
    )  # fmt: skip
    assert response.status == 201, await response.text()
    if project is not None and role is not None:
        response = await client.post(
            f"{base}/projects/{project['key']}/members",
            json={"user_id": user["id"], "role": role}, headers=owner["headers"],
        )  # fmt: skip
        assert response.status == 201, await response.text()


async def make_team(api: Any, client: TestClient) -> Team:
    owner = await api.user()
    org = await api.org(owner)
    project = await api.project(owner, org, key="WEB")
    developer, reporter, viewer, outsider = [await api.user() for _ in range(4)]
    await join(client, org, developer, owner, project, "developer")
    await join(client, org, reporter, owner)
    await join(client, org, viewer, owner, project, "viewer")
    return Team(client, org, project, owner, developer, reporter, viewer, outsider)


@pytest.fixture
async def team(api: Any, client: TestClient) -> Team:
    return await make_team(api, client)


async def post_comment(team: Team, who: dict[str, Any], number: int, body: str) -> Any:
    return await team.client.post(
        team.url(f"/issues/{number}/comments"), json={"body": body}, headers=who["headers"]
    )


async def test_create_comment_stores_row_count_index_and_change(team: Team) -> None:
    number = await team.issue()
    response = await post_comment(team, team.reporter, number, "Steps: click twice zanzibar")
    assert response.status == 201, await response.text()
    comment = await response.json()
    assert response.headers["ETag"] == '"1"'
    assert comment["author"] == team.reporter["id"]
    assert comment["body"] == "Steps: click twice zanzibar"
    assert comment["version"] == 1

    stored = await team.rows("SELECT * FROM comments")
    assert [(r["id"], r["body"], r["author"]) for r in stored] == [
        (comment["id"], "Steps: click twice zanzibar", team.reporter["id"])
    ]
    issue = await team.issue_row(number)
    assert issue["comment_count"] == 1
    assert stored[0]["issue_id"] == issue["id"]
    hits = await team.rows("SELECT rowid FROM issue_search WHERE issue_search MATCH 'zanzibar'")
    assert hits == [{"rowid": issue["row_id"]}]

    (change,) = await team.changes("comment")
    assert change["op"] == "create" and change["entity_id"] == comment["id"]
    assert change["actor"] == team.reporter["id"] and change["origin"] == "api"
    assert change["project"] == team.project["id"]
    assert change["meta"] == {"issue": issue["id"]}
    assert change["new"] == {key: stored[0][key] for key in stored[0] if key != "row_id"}


async def test_list_comments_pages_oldest_first(team: Team) -> None:
    number = await team.issue()
    for i in range(5):
        assert (await post_comment(team, team.developer, number, f"note {i}")).status == 201
    seen: list[str] = []
    url = team.url(f"/issues/{number}/comments?limit=2")
    while url:
        response = await team.client.get(url, headers=team.viewer["headers"])
        assert response.status == 200, await response.text()
        page = await response.json()
        seen += [item["body"] for item in page["items"]]
        cursor = page["next_cursor"]
        url = team.url(f"/issues/{number}/comments?limit=2&cursor={cursor}") if cursor else ""
    assert seen == [f"note {i}" for i in range(5)]


async def test_author_edits_own_comment_with_history_and_if_match(team: Team) -> None:
    number = await team.issue()
    comment = await (await post_comment(team, team.reporter, number, "old words")).json()
    url = team.url(f"/issues/{number}/comments/{comment['id']}")

    response = await team.client.patch(
        url, json={"body": "new words"}, headers={**team.reporter["headers"], "If-Match": '"1"'}
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["version"] == 2 and response.headers["ETag"] == '"2"'
    stale = await team.client.patch(
        url, json={"body": "lost"}, headers={**team.reporter["headers"], "If-Match": '"1"'}
    )
    assert stale.status == 412

    (stored,) = await team.rows("SELECT body, version FROM comments")
    assert stored == {"body": "new words", "version": 2}
    update = (await team.changes("comment"))[-1]
    assert (update["op"], update["field"], update["old"], update["new"], update["version"]) == (
        "update", "body", "old words", "new words", 2,
    )  # fmt: skip
    assert await team.rows("SELECT rowid FROM issue_search WHERE issue_search MATCH 'old'") == []
    assert (
        len(await team.rows("SELECT rowid FROM issue_search WHERE issue_search MATCH 'new'")) == 1
    )


async def test_editing_someone_elses_comment_is_403_even_for_admins(team: Team) -> None:
    number = await team.issue()
    comment = await (await post_comment(team, team.reporter, number, "mine")).json()
    url = team.url(f"/issues/{number}/comments/{comment['id']}")
    for other in (team.developer, team.owner):
        response = await team.client.patch(url, json={"body": "theirs"}, headers=other["headers"])
        assert response.status == 403, await response.text()
    assert await team.rows("SELECT body FROM comments") == [{"body": "mine"}]
    assert len(await team.changes("comment")) == 1


async def test_delete_comment_by_author_and_by_admin_but_not_by_others(team: Team) -> None:
    number = await team.issue()
    first = await (await post_comment(team, team.reporter, number, "first")).json()
    second = await (await post_comment(team, team.reporter, number, "second")).json()
    url = team.url(f"/issues/{number}/comments/")

    denied = await team.client.delete(url + first["id"], headers=team.developer["headers"])
    assert denied.status == 403
    own = await team.client.delete(url + first["id"], headers=team.reporter["headers"])
    assert own.status == 204
    by_admin = await team.client.delete(url + second["id"], headers=team.owner["headers"])
    assert by_admin.status == 204
    again = await team.client.delete(url + second["id"], headers=team.owner["headers"])
    assert again.status == 404

    assert await team.rows("SELECT * FROM comments") == []
    assert (await team.issue_row(number))["comment_count"] == 0
    assert await team.rows("SELECT rowid FROM issue_search WHERE issue_search MATCH 'second'") == []
    deletes = [c for c in await team.changes("comment") if c["op"] == "delete"]
    assert [(c["entity_id"], c["actor"], c["old"]["body"]) for c in deletes] == [
        (first["id"], team.reporter["id"], "first"),
        (second["id"], team.owner["id"], "second"),
    ]


async def test_comment_ids_from_another_issue_or_project_are_404(team: Team, api: Any) -> None:
    one, two = await team.issue("one"), await team.issue("two")
    other_project = await api.project(team.owner, team.org, key="API")
    other_issue = await make_issue(team.client, team.org, other_project, team.owner, "api")
    comment = await (await post_comment(team, team.owner, one, "on one")).json()
    for path in (
        f"/issues/{two}/comments/{comment['id']}",
        f"/issues/{999}/comments/{comment['id']}",
    ):
        response = await team.client.patch(
            team.url(path), json={"body": "x"}, headers=team.owner["headers"]
        )
        assert response.status == 404, path
    moved = team.url(f"/issues/{other_issue}/comments/{comment['id']}", project="API")
    assert (await team.client.delete(moved, headers=team.owner["headers"])).status == 404
    assert (await team.rows("SELECT body FROM comments")) == [{"body": "on one"}]


async def test_comment_ids_from_another_org_are_404(team: Team, api: Any) -> None:
    number = await team.issue()
    other_org = await api.org(team.owner)
    other_project = await api.project(team.owner, other_org, key="WEB")
    foreign_issue = await make_issue(team.client, other_org, other_project, team.owner, "x")
    response = await team.client.post(
        f"/api/v1/orgs/{other_org['slug']}/projects/WEB/issues/{foreign_issue}/comments",
        json={"body": "elsewhere"}, headers=team.owner["headers"],
    )  # fmt: skip
    foreign = await response.json()
    url = team.url(f"/issues/{number}/comments/{foreign['id']}")
    response = await team.client.delete(url, headers=team.owner["headers"])
    assert response.status == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"body": ""}, 422),
        ({"body": "   \n"}, 422),
        ({"body": "x" * 65_537}, 422),
        ({"body": 42}, 422),
        ({"text": "hi"}, 422),
        ({"body": "hi", "author": "me"}, 422),
    ],
)
async def test_bad_comment_bodies_store_nothing(
    team: Team, body: dict[str, Any], status: int
) -> None:
    number = await team.issue()
    response = await team.client.post(
        team.url(f"/issues/{number}/comments"), json=body, headers=team.owner["headers"]
    )
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    assert await team.rows("SELECT * FROM comments") == []
    assert await team.changes("comment") == []


async def test_longest_comment_is_accepted(team: Team) -> None:
    number = await team.issue()
    assert (await post_comment(team, team.owner, number, "y" * 65_536)).status == 201


@pytest.mark.parametrize("number", ["999", "0", "-1", "abc", "1e3", "99999999999999999999"])
async def test_unknown_issue_numbers_are_404(team: Team, number: str) -> None:
    await team.issue()
    url = team.url(f"/issues/{number}/comments")
    posted = await team.client.post(url, json={"body": "x"}, headers=team.owner["headers"])
    assert posted.status == 404
    listed = await team.client.get(url, headers=team.owner["headers"])
    assert listed.status == 404
    assert await team.rows("SELECT * FROM comments") == []


async def test_roles_viewer_403_outsider_404_anonymous_401(team: Team) -> None:
    number = await team.issue()
    url = team.url(f"/issues/{number}/comments")
    viewer = await team.client.post(url, json={"body": "x"}, headers=team.viewer["headers"])
    assert viewer.status == 403
    outsider = await team.client.post(url, json={"body": "x"}, headers=team.outsider["headers"])
    assert outsider.status == 404
    assert (await team.client.get(url, headers=team.outsider["headers"])).status == 404
    assert (await team.client.post(url, json={"body": "x"})).status == 401
    assert await team.rows("SELECT * FROM comments") == []


async def test_garbled_cursor_is_400(team: Team) -> None:
    number = await team.issue()
    # junk, not JSON, wrong arity: 400; well-formed but not a timestamp key: 422
    cases = {"%%%": 400, "bm90LWpzb24": 400, "WyJhIl0": 400, "WyJ4IiwieSJd": 422}
    for cursor, status in cases.items():
        response = await team.client.get(
            team.url(f"/issues/{number}/comments?cursor={cursor}"), headers=team.owner["headers"]
        )
        assert response.status == status, cursor
    bad_limit = await team.client.get(
        team.url(f"/issues/{number}/comments?limit=0"), headers=team.owner["headers"]
    )
    assert bad_limit.status == 422


async def test_comments_on_a_soft_deleted_issue_are_404(team: Team) -> None:
    number = await team.issue()
    deleted = await team.client.delete(team.url(f"/issues/{number}"), headers=team.owner["headers"])
    assert deleted.status == 204, await deleted.text()
    response = await post_comment(team, team.owner, number, "too late")
    assert response.status == 404
    listed = await team.client.get(
        team.url(f"/issues/{number}/comments"), headers=team.reporter["headers"]
    )
    assert listed.status == 404
    as_admin = await team.client.get(
        team.url(f"/issues/{number}/comments"), headers=team.owner["headers"]
    )
    assert as_admin.status == 200


async def test_concurrent_comments_keep_count_and_search_index_exact(team: Team) -> None:
    number = await team.issue()
    responses = await asyncio.gather(
        *(post_comment(team, team.developer, number, f"parallel word{i}") for i in range(30))
    )
    assert sorted(r.status for r in responses) == [201] * 30
    stored = await team.rows("SELECT id FROM comments")
    victims = [c["id"] for c in stored[:10]]
    deletions = await asyncio.gather(
        *(
            team.client.delete(
                team.url(f"/issues/{number}/comments/{cid}"), headers=team.developer["headers"]
            )
            for cid in victims
        )
    )
    assert [r.status for r in deletions] == [204] * 10
    assert (await team.issue_row(number))["comment_count"] == 20
    await team.rows("INSERT INTO issue_search (issue_search, rank) VALUES ('integrity-check', 1)")
    assert len(await team.rows("SELECT * FROM changes WHERE entity = 'comment'")) == 40


async def test_service_create_comment_serves_the_cli(team: Team) -> None:
    """The CLI calls the same function with its own actor origin."""
    number = await team.issue()
    core = team.client.app[CORE]
    access, actor = await act_as(
        core, team.org["slug"], "web", team.reporter["id"], "cli",
        permission=Permission.COMMENT_CREATE,
    )  # fmt: skip
    comment = await comments.create_comment(core, access, number, CommentIn(body="from cli"), actor)
    assert comment.body == "from cli" and comment.author == team.reporter["id"]
    (change,) = await team.changes("comment")
    assert (change["origin"], change["entity_id"]) == ("cli", comment.id)
    with pytest.raises(NotFound):
        await comments.create_comment(core, access, 999, CommentIn(body="x"), actor)
