"""Projects over HTTP: create, list what one sees, patch with If-Match, soft delete, restore."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from tests.conftest import Api
from tests.test_http_orgs import ORGS, add_member, changes, tenant_rows
from tracker.domain.models.orgs import ProjectListQuery


def projects_url(org: dict, key: str = "") -> str:
    return f"{ORGS}/{org['slug']}/projects" + (f"/{key}" if key else "")


async def test_create_stores_project_stages_and_changes(api: Api, client: TestClient) -> None:
    owner = await api.user()
    org = await api.org(owner, "acme")
    response = await client.post(
        projects_url(org),
        json={"name": "Website", "key": "web", "description": "d", "visibility": "private"},
        headers=owner["headers"],
    )
    assert response.status == 201
    project = await response.json()
    assert project["key"] == "WEB" and project["visibility"] == "private"
    assert project["role"] == "admin" and project["version"] == 1
    assert response.headers["ETag"] == '"1"'
    [row] = await tenant_rows(client, org["id"], "SELECT * FROM projects")
    assert row["key"] == "WEB" and row["created_by"] == owner["id"]
    stages = await tenant_rows(client, org["id"], "SELECT name FROM stages ORDER BY position")
    assert [s["name"] for s in stages] == ["Open", "In Progress", "Resolved", "Closed"]
    [created] = await changes(client, org["id"], "project")
    assert created["op"] == "create" and created["new"]["key"] == "WEB"
    assert created["project"] == project["id"] and created["version"] == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [({"name": "x", "key": "W"}, 422, "key"), ({"name": "x", "key": "1AB"}, 422, "key"),
     ({"name": "x", "key": "ABCDEFGHIJK"}, 422, "key"), ({"name": "x", "key": "A-B"}, 422, "key"),
     ({"name": "x", "key": "web"}, 409, None), ({"name": "x", "key": "OK", "visibility": "x"},
     422, "visibility"), ({"key": "OK"}, 422, "name")],
)  # fmt: skip
async def test_bad_project_input(
    api: Api, client: TestClient, body: dict, status: int, field: str | None
) -> None:
    owner = await api.user()
    org = await api.org(owner, "acme")
    await api.project(owner, org, "WEB")
    response = await client.post(projects_url(org), json=body, headers=owner["headers"])
    assert response.status == status, await response.text()
    problem = await response.json()
    assert response.content_type == "application/problem+json"
    if field:
        assert field in {e["field"] for e in problem["errors"]}
    else:
        assert "WEB" in problem["detail"]


async def test_list_shows_org_projects_and_only_my_private_ones(
    api: Api, client: TestClient
) -> None:
    owner, member, insider = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    for user in (member, insider):
        await add_member(client, owner, org, user)
    await api.project(owner, org, "WEB")
    secret = await api.project(owner, org, "SEC", visibility="private")
    await api.project(owner, org, "APP")
    await client.post(f"{projects_url(org, 'SEC')}/members",
                      json={"user_id": insider["id"], "role": "viewer"},
                      headers=owner["headers"])  # fmt: skip

    async def keys(user: dict, limit: int = 50) -> list[tuple[str, str]]:
        found, cursor = [], None
        while True:
            url = projects_url(org) + f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            page = await (await client.get(url, headers=user["headers"])).json()
            found += [(p["key"], p["role"]) for p in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                return found

    assert await keys(owner, 1) == [("APP", "admin"), ("SEC", "admin"), ("WEB", "admin")]
    assert await keys(member) == [("APP", "reporter"), ("WEB", "reporter")]
    assert await keys(insider) == [("APP", "reporter"), ("SEC", "viewer"), ("WEB", "reporter")]
    response = await client.get(projects_url(org, "sec"), headers=member["headers"])
    assert response.status == 404 and (await response.json())["detail"] == "project not found"
    response = await client.get(projects_url(org, "sec"), headers=insider["headers"])
    assert (await response.json())["id"] == secret["id"]


async def test_patch_records_fields_and_honours_if_match(api: Api, client: TestClient) -> None:
    owner = await api.user()
    org = await api.org(owner, "acme")
    project = await api.project(owner, org, "WEB")
    url = projects_url(org, "web")
    response = await client.patch(url, json={"name": "Site", "visibility": "private"},
                                  headers={**owner["headers"], "If-Match": '"1"'})  # fmt: skip
    assert response.status == 200
    body = await response.json()
    assert body["name"] == "Site" and body["version"] == 2 and response.headers["ETag"] == '"2"'
    response = await client.patch(url, json={"name": "Stale"},
                                  headers={**owner["headers"], "If-Match": '"1"'})  # fmt: skip
    assert response.status == 412
    response = await client.patch(url, json={"key": "NEW"}, headers=owner["headers"])
    assert response.status == 422
    updates = [c for c in await changes(client, org["id"], "project") if c["op"] == "update"]
    assert {(c["field"], c["old"], c["new"], c["version"]) for c in updates} == {
        ("name", "Project WEB", "Site", 2), ("visibility", "org", "private", 2),
    }  # fmt: skip
    [row] = await tenant_rows(client, org["id"], "SELECT * FROM projects")
    assert row["name"] == "Site" and row["version"] == 2 and row["id"] == project["id"]


async def test_roles_for_patch_delete_and_restore(api: Api, client: TestClient) -> None:
    owner, admin, dev, padmin = [await api.user() for _ in range(4)]
    org = await api.org(owner, "acme")
    await add_member(client, owner, org, admin, "admin")
    for user in (dev, padmin):
        await add_member(client, owner, org, user)
    await api.project(owner, org, "WEB")
    for user, role in ((dev, "developer"), (padmin, "admin")):
        body = {"user_id": user["id"], "role": role}
        await client.post(
            f"{projects_url(org, 'WEB')}/members", json=body, headers=owner["headers"]
        )
    url = projects_url(org, "WEB")
    assert (await client.patch(url, json={"name": "n"}, headers=dev["headers"])).status == 403
    assert (await client.patch(url, json={"name": "n"}, headers=padmin["headers"])).status == 200
    assert (await client.delete(url, headers=dev["headers"])).status == 403
    assert (await client.delete(url, headers=padmin["headers"])).status == 204
    assert (await client.get(url, headers=owner["headers"])).status == 404
    restore = url + "/restore"
    response = await client.post(restore, headers=padmin["headers"])
    assert response.status == 403  # a project admin is not an org admin
    assert (await client.post(restore, headers=admin["headers"])).status == 200
    assert (await client.post(restore, headers=admin["headers"])).status == 409
    assert (await client.get(url, headers=dev["headers"])).status == 200
    ops = [c["op"] for c in await changes(client, org["id"], "project")]
    assert ops == ["create", "update", "delete", "restore"]


async def test_deleted_project_keeps_its_key_and_is_listed_for_admins(
    api: Api, client: TestClient
) -> None:
    owner, member = await api.user(), await api.user()
    org = await api.org(owner, "acme")
    await add_member(client, owner, org, member)
    await api.project(owner, org, "WEB")
    assert (await client.delete(projects_url(org, "WEB"), headers=owner["headers"])).status == 204
    response = await client.post(projects_url(org), json={"name": "again", "key": "web"},
                                 headers=owner["headers"])  # fmt: skip
    assert response.status == 409 and "deleted" in (await response.json())["detail"]
    page = await (await client.get(projects_url(org), headers=owner["headers"])).json()
    assert page["items"] == []
    url = projects_url(org) + "?deleted=true"
    page = await (await client.get(url, headers=owner["headers"])).json()
    assert [p["key"] for p in page["items"]] == ["WEB"] and page["items"][0]["deleted_at"]
    assert (await client.get(url, headers=member["headers"])).status == 403
    response = await client.post(projects_url(org, "NOPE") + "/restore", headers=owner["headers"])
    assert response.status == 404


async def test_member_without_role_gets_403_and_stranger_404(api: Api, client: TestClient) -> None:
    owner, member, stranger = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    await add_member(client, owner, org, member)
    await api.project(owner, org, "WEB")
    body = {"name": "x", "key": "NEW"}
    response = await client.post(projects_url(org), json=body, headers=member["headers"])
    assert response.status == 403
    for url in (projects_url(org), projects_url(org, "WEB")):
        response = await client.get(url, headers=stranger["headers"])
        assert response.status == 404
        assert (await response.json())["detail"] == "organization not found"


async def test_ids_of_another_org_are_404_everywhere(api: Api, client: TestClient) -> None:
    alice, bob = await api.user(), await api.user()
    org_a, org_b = await api.org(alice, "alpha"), await api.org(bob, "beta")
    await api.project(alice, org_a, "WEB")
    project_b = await api.project(bob, org_b, "SEC")
    tries: list[tuple[str, str]] = [
        ("GET", projects_url(org_b)), ("GET", projects_url(org_b, "SEC")),
        ("GET", projects_url(org_a, "SEC")), ("GET", projects_url(org_a, project_b["id"])),
        ("GET", f"{ORGS}/{org_b['id']}"), ("GET", f"{ORGS}/{org_b['id']}/projects"),
        ("POST", projects_url(org_a, "SEC") + "/restore"),
        ("DELETE", f"{ORGS}/alpha/members/{bob['id']}"),
        ("GET", f"{ORGS}/beta/members"),
        ("PATCH", f"{projects_url(org_a, 'WEB')}/members/{bob['id']}"),
    ]  # fmt: skip
    for method, url in tries:
        body: Any = {"role": "admin"} if method == "PATCH" else None
        response = await client.request(method, url, json=body, headers=alice["headers"])
        assert response.status == 404, (method, url, response.status)


async def test_listed_projects_are_the_project_model_byte_for_byte(
    api: Api, client: TestClient
) -> None:
    """The list encodes rows itself (services.projects.list_projects_json); GET one
    project dumps the model. Each listed project must be that very text."""
    owner, member = await api.user(), await api.user()
    org = await api.org(owner)
    await add_member(client, owner, org, member, "member")
    tricky = 'Ünïcode ✓ "quoted" \\ back\nslash \u0001 ctrl \u2028 </script>'
    await api.project(owner, org, key="WEB", description=tricky)
    await api.project(owner, org, key="OPS", visibility="private")
    base = f"/api/v1/orgs/{org['slug']}/projects"
    for who in (owner, member):
        listed = await client.get(f"{base}?limit=1", headers=who["headers"])
        assert listed.status == 200
        text = await listed.text()
        page = await listed.json()
        for item in page["items"]:
            single = await client.get(f"{base}/{item['key']}", headers=who["headers"])
            assert (await single.text()) in text
        assert (page["next_cursor"] is not None) == (who is owner)  # OPS is the owner's too


async def test_org_admin_lists_every_project_as_admin_whatever_their_membership(
    api: Api, client: TestClient
) -> None:
    """Owners and admins list without the membership join: an org admin who is only a
    viewer of a private project still sees it, as admin (the role GET one gives)."""
    owner, admin = await api.user(), await api.user()
    org = await api.org(owner)
    await add_member(client, owner, org, admin, "admin")
    await api.project(owner, org, "WEB")
    await api.project(owner, org, "SEC", visibility="private")
    await client.post(f"{projects_url(org, 'SEC')}/members",
                      json={"user_id": admin["id"], "role": "viewer"},
                      headers=owner["headers"])  # fmt: skip
    page = await (await client.get(projects_url(org), headers=admin["headers"])).json()
    assert [(p["key"], p["role"]) for p in page["items"]] == [("SEC", "admin"), ("WEB", "admin")]
    one = await (await client.get(projects_url(org, "SEC"), headers=admin["headers"])).json()
    assert one["role"] == "admin"


async def test_list_without_a_query_string_uses_the_defaults_and_shares_nothing(
    api: Api, client: TestClient
) -> None:
    """A request with no query string gets one shared default query object (frozen);
    requests with parameters still validate their own, before and after it."""
    owner = await api.user()
    org = await api.org(owner)
    for key in ("AAA", "BBB"):
        await api.project(owner, org, key)

    async def page(query: str) -> Any:
        return await (await client.get(projects_url(org) + query, headers=owner["headers"])).json()

    first, plain, again = await page("?limit=1"), await page(""), await page("?limit=1")
    assert [p["key"] for p in plain["items"]] == ["AAA", "BBB"] and plain["next_cursor"] is None
    assert first == again and [p["key"] for p in first["items"]] == ["AAA"]
    bad = await client.get(projects_url(org) + "?limit=0", headers=owner["headers"])
    assert bad.status == 422
    with pytest.raises(ValidationError):  # frozen: a handler cannot change the shared one
        ProjectListQuery().limit = 1  # type: ignore[misc]
