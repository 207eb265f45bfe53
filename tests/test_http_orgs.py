"""Organizations over HTTP: create, list, get, rename, archive; what the stores hold.

The helpers at the top (rows of the system and tenant databases, the change
log, adding a member) are shared by the project, member and matrix tests.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tracker.http.keys import CORE

ORGS = "/api/v1/orgs"


async def tenant_rows(client: TestClient, org_id: str, sql: str, *params: Any) -> list[dict]:
    """Rows straight from a tenant database (what was really stored)."""
    async with client.app[CORE].tenants.lease(org_id) as db:
        found = await db.read(lambda conn: conn.execute(sql, params).fetchall())
    return [dict(row) for row in found]


async def system_rows(client: TestClient, sql: str, *params: Any) -> list[dict]:
    found = await client.app[CORE].system.read(lambda conn: conn.execute(sql, params).fetchall())
    return [dict(row) for row in found]


async def changes(client: TestClient, org_id: str, entity: str) -> list[dict[str, Any]]:
    """The tenant's change rows for one entity, JSON decoded, in commit order."""
    found = await tenant_rows(
        client, org_id, "SELECT * FROM changes WHERE entity = ? ORDER BY seq", entity
    )
    for row in found:
        for name in ("old", "new", "meta"):
            row[name] = json.loads(row[name]) if row[name] is not None else None
    return found


async def add_member(
    client: TestClient, owner: dict, org: dict, user: dict, role: str = "member"
) -> dict[str, Any]:
    response = await client.post(
        f"{ORGS}/{org['slug']}/members",
        json={"user_id": user["id"], "role": role},
        headers=owner["headers"],
    )
    assert response.status == 201, await response.text()
    return await response.json()


def tenant_dirs(data_dir: Path) -> set[str]:
    return {p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}


async def test_create_org_makes_owner_tenant_file_and_change_row(
    api: Api, client: TestClient, settings: Any
) -> None:
    owner = await api.user()
    response = await client.post(ORGS, json={"name": "Acme Corp"}, headers=owner["headers"])
    assert response.status == 201
    org = await response.json()
    assert org["slug"] == "acme-corp" and org["role"] == "owner" and org["name"] == "Acme Corp"
    assert (settings.data_dir / org["id"] / "tracker.db").is_file()
    members = await system_rows(client, "SELECT * FROM org_members WHERE org_id = ?", org["id"])
    assert [(m["user_id"], m["role"]) for m in members] == [(owner["id"], "owner")]
    [change] = await changes(client, org["id"], "org")
    assert change["op"] == "create" and change["actor"] == owner["id"]
    assert change["new"]["slug"] == "acme-corp" and change["project"] is None


async def test_derived_slugs_stay_unique_and_explicit_ones_conflict(
    api: Api, client: TestClient
) -> None:
    owner = await api.user()
    slugs = []
    for _ in range(3):
        response = await client.post(ORGS, json={"name": "Ünïcode Lab!"}, headers=owner["headers"])
        assert response.status == 201
        slugs.append((await response.json())["slug"])
    assert slugs == ["unicode-lab", "unicode-lab-2", "unicode-lab-3"]
    response = await client.post(
        ORGS, json={"name": "X", "slug": "unicode-lab"}, headers=owner["headers"]
    )
    assert response.status == 409
    problem = await response.json()
    assert problem["title"] == "Conflict" and "unicode-lab" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": ""}, "name"), ({"name": "A", "slug": "Bad Slug"}, "slug"),
     ({"name": "A", "slug": "api"}, "slug"), ({}, "name"), ({"name": "A", "x": 1}, "x")],
)  # fmt: skip
async def test_bad_org_bodies_are_422_with_the_field(
    api: Api, client: TestClient, body: dict, field: str
) -> None:
    owner = await api.user()
    response = await client.post(ORGS, json=body, headers=owner["headers"])
    assert response.status == 422
    problem = await response.json()
    assert response.content_type == "application/problem+json"
    assert field in {e["field"] for e in problem["errors"]}


async def test_list_mine_pages_by_slug_and_refuses_garbled_cursors(
    api: Api, client: TestClient
) -> None:
    owner, other = await api.user(), await api.user()
    for slug in ("cc", "aa", "bb"):
        await api.org(owner, slug)
    await api.org(other, "zz")
    seen, cursor = [], None
    while True:
        url = f"{ORGS}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url, headers=owner["headers"])).json()
        seen += [o["slug"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["aa", "bb", "cc"]
    for bad in ("garbage", "W10", "%%%", "eyJhIjoxfQ"):
        response = await client.get(f"{ORGS}?cursor={bad}", headers=owner["headers"])
        assert response.status == 400, bad
    assert (await client.get(f"{ORGS}?limit=0", headers=owner["headers"])).status == 422
    assert (await client.get(ORGS)).status == 401


async def test_get_org_hides_it_from_non_members(api: Api, client: TestClient) -> None:
    owner, stranger = await api.user(), await api.user()
    org = await api.org(owner, "acme")
    response = await client.get(f"{ORGS}/acme", headers=owner["headers"])
    assert (await response.json())["role"] == "owner"
    response = await client.get(f"{ORGS}/acme", headers=stranger["headers"])
    assert response.status == 404
    assert (await response.json())["detail"] == "organization not found"
    assert (await client.get(f"{ORGS}/{org['id']}", headers=owner["headers"])).status == 404
    assert (await client.get(f"{ORGS}/acme")).status == 401


async def test_patch_renames_and_moves_the_slug(api: Api, client: TestClient) -> None:
    owner = await api.user()
    org = await api.org(owner, "acme")
    await api.org(owner, "taken")
    url = f"{ORGS}/acme"
    response = await client.patch(url, json={"name": "Acme Inc", "slug": "acme-inc"},
                                  headers=owner["headers"])  # fmt: skip
    assert response.status == 200
    assert (await response.json())["slug"] == "acme-inc"
    assert (await client.get(url, headers=owner["headers"])).status == 404
    response = await client.patch(f"{ORGS}/acme-inc", json={"slug": "taken"},
                                  headers=owner["headers"])  # fmt: skip
    assert response.status == 409
    response = await client.patch(f"{ORGS}/acme-inc", json={"slug": "No!"},
                                  headers=owner["headers"])  # fmt: skip
    assert response.status == 422
    rows = await changes(client, org["id"], "org")
    assert {(r["field"], r["old"], r["new"]) for r in rows if r["op"] == "update"} == {
        ("name", "acme", "Acme Inc"), ("slug", "acme", "acme-inc"),
    }  # fmt: skip


async def test_member_cannot_patch_or_delete_and_admin_cannot_delete(
    api: Api, client: TestClient
) -> None:
    owner, admin, member = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    await add_member(client, owner, org, admin, "admin")
    await add_member(client, owner, org, member, "member")
    url = f"{ORGS}/acme"
    assert (await client.patch(url, json={"name": "x"}, headers=member["headers"])).status == 403
    assert (await client.patch(url, json={"name": "y"}, headers=admin["headers"])).status == 200
    assert (await client.delete(url, headers=admin["headers"])).status == 403
    assert (await client.delete(url, headers=member["headers"])).status == 403


async def test_delete_archives_the_folder_and_frees_the_slug(
    api: Api, client: TestClient, settings: Any
) -> None:
    owner = await api.user()
    org = await api.org(owner, "acme")
    await api.project(owner, org, "WEB")
    response = await client.delete(f"{ORGS}/acme", headers=owner["headers"])
    assert response.status == 204
    assert not (settings.data_dir / org["id"]).exists()
    [archived] = list((settings.data_dir / ".archive").iterdir())
    assert archived.name.startswith("acme-") and archived.name.endswith("Z")
    assert (archived / "tracker.db").is_file()
    [row] = await system_rows(client, "SELECT * FROM orgs WHERE id = ?", org["id"])
    assert row["archived_at"] is not None and row["archive_path"] == f".archive/{archived.name}"
    assert (await client.get(f"{ORGS}/acme", headers=owner["headers"])).status == 404
    assert (await client.get(ORGS, headers=owner["headers"])).status == 200
    fresh = await api.org(owner, "acme")
    assert fresh["id"] != org["id"]
    import sqlite3

    with sqlite3.connect(archived / "tracker.db") as conn:
        ops = conn.execute("SELECT op FROM changes WHERE entity = 'org' ORDER BY seq").fetchall()
    assert [op for (op,) in ops] == ["create", "delete"]


async def test_twenty_concurrent_creations_make_twenty_tenants(
    api: Api, client: TestClient, settings: Any
) -> None:
    owner = await api.user()
    responses = await asyncio.gather(*(
        client.post(ORGS, json={"name": "Same Name"}, headers=owner["headers"])
        for _ in range(20)
    ))  # fmt: skip
    assert [r.status for r in responses] == [201] * 20
    orgs = [await r.json() for r in responses]
    assert len({o["slug"] for o in orgs}) == 20 and len({o["id"] for o in orgs}) == 20
    assert tenant_dirs(settings.data_dir) == {o["id"] for o in orgs}
    for org in orgs:
        assert (settings.data_dir / org["id"] / "tracker.db").is_file()


async def test_concurrent_creations_of_one_slug_leave_no_partial_org(
    api: Api, client: TestClient, settings: Any
) -> None:
    owner = await api.user()
    responses = await asyncio.gather(*(
        client.post(ORGS, json={"name": f"Org {i}", "slug": "contested"},
                    headers=owner["headers"])
        for i in range(20)
    ))  # fmt: skip
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 19
    rows = await system_rows(client, "SELECT id FROM orgs")
    assert tenant_dirs(settings.data_dir) == {r["id"] for r in rows}
    assert len(rows) == 1
