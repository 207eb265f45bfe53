"""Org and project memberships over HTTP: roles, the last owner, transfer, instant effect."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.test_http_orgs import ORGS, add_member, changes, system_rows, tenant_rows


def members_url(org: dict, user_id: str = "") -> str:
    return f"{ORGS}/{org['slug']}/members" + (f"/{user_id}" if user_id else "")


def project_members_url(org: dict, key: str, user_id: str = "") -> str:
    return f"{ORGS}/{org['slug']}/projects/{key}/members" + (f"/{user_id}" if user_id else "")


async def org_role(client: TestClient, org: dict, user: dict) -> str | None:
    sql = "SELECT role FROM org_members WHERE org_id = ? AND user_id = ?"
    rows = await system_rows(client, sql, org["id"], user["id"])
    return rows[0]["role"] if rows else None


async def test_add_by_email_or_id_is_stored_and_logged(api: Api, client: TestClient) -> None:
    owner, ann, bob = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    response = await client.post(members_url(org), json={"email": ann["email"].upper(),
                                 "role": "admin"}, headers=owner["headers"])  # fmt: skip
    assert response.status == 201
    body = await response.json()
    assert body["user_id"] == ann["id"] and body["role"] == "admin"
    await add_member(client, owner, org, bob)
    assert await org_role(client, org, ann) == "admin"
    assert await org_role(client, org, bob) == "member"
    page = await (await client.get(members_url(org) + "?limit=2", headers=bob["headers"])).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await (await client.get(members_url(org) + f"?cursor={page['next_cursor']}",
                                   headers=bob["headers"])).json()  # fmt: skip
    emails = [m["email"] for m in page["items"] + rest["items"]]
    assert sorted(emails, key=str.lower) == emails and len(emails) == 3
    created = [c for c in await changes(client, org["id"], "org_member") if c["op"] == "create"]
    assert [(c["entity_id"], c["new"]["role"], c["actor"]) for c in created] == [
        (ann["id"], "admin", owner["id"]), (bob["id"], "member", owner["id"]),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [({"email": "nobody@example.com", "role": "member"}, 422, "email"),
     ({"user_id": "0190a0a0-0000-7000-8000-000000000000", "role": "member"}, 422, "user_id"),
     ({"user_id": "not-a-uuid", "role": "member"}, 422, "user_id"),
     ({"role": "member"}, 422, "body"),
     ({"email": "x@y.z", "user_id": "0190a0a0-0000-7000-8000-000000000000"}, 422, "body"),
     ({"email": "EXISTING", "role": "superuser"}, 422, "role"),
     ({"email": "EXISTING", "role": "member"}, 409, None)],
)  # fmt: skip
async def test_bad_member_input(
    api: Api, client: TestClient, body: dict, status: int, field: str | None
) -> None:
    owner, existing = await api.user(), await api.user()
    org = await api.org(owner, "acme")
    await add_member(client, owner, org, existing)
    body = {k: existing["email"] if v == "EXISTING" else v for k, v in body.items()}
    response = await client.post(members_url(org), json=body, headers=owner["headers"])
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    if field is not None:
        assert any(e["field"] == field or e["field"].startswith(field) for e in problem["errors"])


async def test_only_owners_handle_the_owner_role(api: Api, client: TestClient) -> None:
    owner, admin, bob = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    await add_member(client, owner, org, admin, "admin")
    h = admin["headers"]
    response = await client.post(members_url(org), json={"user_id": bob["id"], "role": "owner"},
                                 headers=h)  # fmt: skip
    assert response.status == 403
    await add_member(client, admin, org, bob, "member")
    assert (await client.patch(members_url(org, bob["id"]), json={"role": "owner"},
                               headers=h)).status == 403  # fmt: skip
    assert (await client.patch(members_url(org, owner["id"]), json={"role": "member"},
                               headers=h)).status == 403  # fmt: skip
    assert (await client.delete(members_url(org, owner["id"]), headers=h)).status == 403
    assert (await client.patch(members_url(org, bob["id"]), json={"role": "admin"},
                               headers=h)).status == 200  # fmt: skip
    assert await org_role(client, org, bob) == "admin"
    [update] = [c for c in await changes(client, org["id"], "org_member") if c["op"] == "update"]
    assert (update["field"], update["old"], update["new"]) == ("role", "member", "admin")


async def test_the_last_owner_can_neither_leave_nor_be_demoted(
    api: Api, client: TestClient
) -> None:
    owner, second = await api.user(), await api.user()
    org = await api.org(owner, "acme")
    h = owner["headers"]
    for method, url, body in (
        ("PATCH", members_url(org, owner["id"]), {"role": "admin"}),
        ("DELETE", members_url(org, owner["id"]), None),
        ("POST", f"{ORGS}/acme/leave", None),
    ):
        response = await client.request(method, url, json=body, headers=h)
        assert response.status == 409, (method, url)
        assert "owner" in (await response.json())["detail"]
    assert await org_role(client, org, owner) == "owner"
    await add_member(client, owner, org, second, "owner")
    assert (await client.post(f"{ORGS}/acme/leave", headers=h)).status == 204
    assert await org_role(client, org, owner) is None
    response = await client.delete(members_url(org, second["id"]), headers=second["headers"])
    assert response.status == 409


async def test_transfer_ownership_swaps_roles_atomically(api: Api, client: TestClient) -> None:
    owner, heir, stranger = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    await add_member(client, owner, org, heir, "member")
    url = f"{ORGS}/acme/transfer"
    response = await client.post(url, json={"user_id": stranger["id"]}, headers=owner["headers"])
    assert response.status == 422
    response = await client.post(url, json={"email": owner["email"]}, headers=owner["headers"])
    assert response.status == 422
    response = await client.post(url, json={"user_id": owner["id"]}, headers=heir["headers"])
    assert response.status == 403
    response = await client.post(url, json={"email": heir["email"]}, headers=owner["headers"])
    assert response.status == 200 and (await response.json())["role"] == "owner"
    assert await org_role(client, org, heir) == "owner"
    assert await org_role(client, org, owner) == "admin"
    assert (await client.delete(f"{ORGS}/acme", headers=owner["headers"])).status == 403


async def test_removal_takes_effect_on_the_very_next_request(api: Api, client: TestClient) -> None:
    owner, bob = await api.user(), await api.user()
    org = await api.org(owner, "acme")
    project = await api.project(owner, org, "SEC", visibility="private")
    await add_member(client, owner, org, bob)
    await client.post(project_members_url(org, "SEC"), json={"user_id": bob["id"],
                      "role": "admin"}, headers=owner["headers"])  # fmt: skip
    url = f"{ORGS}/acme/projects/SEC"
    assert (await client.patch(url, json={"name": "x"}, headers=bob["headers"])).status == 200
    await client.patch(project_members_url(org, "SEC", bob["id"]), json={"role": "viewer"},
                       headers=owner["headers"])  # fmt: skip
    assert (await client.patch(url, json={"name": "y"}, headers=bob["headers"])).status == 403
    assert (await client.get(url, headers=bob["headers"])).status == 200
    response = await client.delete(members_url(org, bob["id"]), headers=owner["headers"])
    assert response.status == 204
    assert (await client.get(url, headers=bob["headers"])).status == 404
    assert (await client.get(f"{ORGS}/acme", headers=bob["headers"])).status == 404
    rows = await tenant_rows(client, org["id"], "SELECT * FROM project_members")
    assert rows == []  # the org removal dropped the project membership too
    dropped = [c for c in await changes(client, org["id"], "project_member") if c["op"] == "delete"]
    assert [(c["entity_id"], c["project"]) for c in dropped] == [(bob["id"], project["id"])]
    [gone] = [c for c in await changes(client, org["id"], "org_member") if c["op"] == "delete"]
    assert gone["entity_id"] == bob["id"] and gone["old"]["role"] == "member"


async def test_project_members_crud(api: Api, client: TestClient) -> None:
    owner, ann, outsider = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    project = await api.project(owner, org, "WEB")
    await add_member(client, owner, org, ann)
    url, h = project_members_url(org, "web"), owner["headers"]
    response = await client.post(url, json={"email": outsider["email"], "role": "viewer"},
                                 headers=h)  # fmt: skip
    assert response.status == 422 and "not a member" in (await response.json())["detail"]
    response = await client.post(url, json={"user_id": ann["id"], "role": "boss"}, headers=h)
    assert response.status == 422
    response = await client.post(url, json={"email": ann["email"], "role": "developer"},
                                 headers=h)  # fmt: skip
    assert response.status == 201
    assert (await client.post(url, json={"user_id": ann["id"]}, headers=h)).status == 409
    page = await (await client.get(url, headers=ann["headers"])).json()
    assert [(m["email"], m["role"]) for m in page["items"]] == [(ann["email"], "developer")]
    member_url = project_members_url(org, "web", ann["id"])
    response = await client.patch(member_url, json={"role": "admin"}, headers=h)
    assert response.status == 200 and (await response.json())["role"] == "admin"
    assert (await client.delete(member_url, headers=ann["headers"])).status == 204
    assert (await client.delete(member_url, headers=h)).status == 404
    assert (await client.patch(member_url, json={"role": "viewer"}, headers=h)).status == 404
    ops = [(c["op"], c["project"]) for c in await changes(client, org["id"], "project_member")]
    assert ops == [("create", project["id"]), ("update", project["id"]),
                   ("delete", project["id"])]  # fmt: skip


async def test_member_without_the_role_gets_403(api: Api, client: TestClient) -> None:
    owner, bob, carl = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    await api.project(owner, org, "WEB")
    await add_member(client, owner, org, bob)
    body: dict[str, Any] = {"user_id": carl["id"], "role": "member"}
    assert (await client.post(members_url(org), json=body, headers=bob["headers"])).status == 403
    body = {"user_id": bob["id"], "role": "admin"}
    response = await client.post(project_members_url(org, "WEB"), json=body,
                                 headers=bob["headers"])  # fmt: skip
    assert response.status == 403
    assert (await client.get(members_url(org), headers=bob["headers"])).status == 200
    assert (await client.get(members_url(org), headers=carl["headers"])).status == 404
