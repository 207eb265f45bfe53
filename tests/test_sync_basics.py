"""Sync: info, clients (lifecycle, revocation, ownership), versions, bad input."""

from __future__ import annotations

from typing import Any

from tests.sync_helpers import Replica, World


async def world_of(client: Any, api: Any) -> World:
    return await World(client, api).build()


async def test_info_lists_readable_projects_and_versions(client: Any, api: Any) -> None:
    world = await world_of(client, api)
    outsider = await api.user()
    await world.member(outsider, "member")
    r = await client.get("/api/v1/orgs/acme/sync/info", headers=outsider["headers"])
    assert r.status == 200, await r.text()
    body = await r.json()
    assert [p["key"] for p in body["projects"]] == ["WEB"]  # OPS is private
    assert body["protocol"] == {"min": 1, "max": 1}
    assert body["schema"] == {"min": 1, "current": 1}
    assert "issue.create@1" in body["mutations"]
    assert body["head"] > 0 and body["epoch"]


async def test_client_lifecycle_and_revocation(client: Any, api: Any) -> None:
    world = await world_of(client, api)
    me = Replica(world, world.dev)
    registered = await me.register(["WEB"])
    assert registered["scope"] == ["WEB"] and registered["last_mutation_id"] == 0
    url = f"/api/v1/orgs/acme/sync/clients/{me.client_id}"
    r = await client.put(url, json={"scope": ["WEB", "OPS"]}, headers=me.headers)
    assert r.status == 200 and (await r.json())["scope"] == ["OPS", "WEB"]
    # another user's client: 403; an unknown one: 404 client-unknown
    thief = Replica(world, world.owner)
    thief.client_id = me.client_id
    thief.cursor = me.cursor
    body = await thief.push(status=403)
    assert body["type"].endswith("client-not-yours")
    stranger = Replica(world, world.dev)
    stranger.client_id = "0190aaaa-0000-7000-8000-000000000000"
    assert (await stranger.push(status=404))["type"].endswith("client-unknown")
    # revoked: every later call is 403 with words
    r = await client.delete(url, headers=me.headers)
    assert r.status == 204
    body = await me.push(status=403)
    assert body["type"].endswith("client-revoked") and "revoked" in body["detail"]
    assert (await me.pull(status=403))["type"].endswith("client-revoked")


async def test_scope_must_name_readable_projects(client: Any, api: Any) -> None:
    world = await world_of(client, api)
    outsider = await api.user()
    await world.member(outsider, "member")
    headers = outsider["headers"]
    r = await client.post(
        "/api/v1/orgs/acme/sync/clients", json={"scope": ["OPS"]}, headers=headers
    )
    assert r.status == 422
    r = await client.post(
        "/api/v1/orgs/acme/sync/clients", json={"scope": ["no way"]}, headers=headers
    )
    assert r.status == 422


async def test_versions_426_with_words_and_400_for_newer(client: Any, api: Any) -> None:
    world = await world_of(client, api)
    me = Replica(world, world.dev)
    await me.register()
    old = {**me.headers, "Rhythm-Sync": "protocol=0; schema=1"}
    r = await client.get("/api/v1/orgs/acme/sync/info", headers=old)
    assert r.status == 426
    body = await r.json()
    assert "upgrade" in body["detail"] and body["min_protocol"] == 1
    new = {**me.headers, "Rhythm-Sync": "protocol=1; schema=9"}
    r = await client.get(
        "/api/v1/orgs/acme/sync/pull",
        headers=new,
        params={"client_id": me.client_id, "cursor": me.cursor},
    )
    assert r.status == 400 and (await r.json())["max_schema"] == 1
    r = await client.post(
        "/api/v1/orgs/acme/sync/push",
        headers=me.user["headers"],
        json={"client_id": me.client_id, "protocol": 0, "mutations": []},
    )
    assert r.status == 426
    r = await client.get("/api/v1/orgs/acme/sync/info", headers={**me.headers, "Rhythm-Sync": "x"})
    assert r.status == 400


async def test_bad_input_is_problem_details(client: Any, api: Any) -> None:
    world = await world_of(client, api)
    me = Replica(world, world.dev)
    await me.register()
    h = me.headers
    for params in (
        {"client_id": me.client_id, "cursor": "nonsense"},
        {"client_id": me.client_id, "cursor": "abc.12x"},
        {"client_id": me.client_id},
    ):
        r = await client.get("/api/v1/orgs/acme/sync/pull", headers=h, params=params)
        assert r.status in (400, 422), (params, r.status)
        assert r.content_type == "application/problem+json"
    r = await client.get(
        "/api/v1/orgs/acme/sync/snapshot",
        headers=h,
        params={"client_id": me.client_id, "page_token": "!!!"},
    )
    assert r.status == 400
    r = await client.post(
        "/api/v1/orgs/acme/sync/push",
        headers=h,
        json={"client_id": me.client_id, "mutations": [{"id": 0}]},
    )
    assert r.status == 422
    r = await client.post(
        "/api/v1/orgs/acme/sync/push",
        headers=h,
        json={
            "client_id": me.client_id,
            "mutations": [{"id": i + 1, "name": "x", "v": 1, "args": {}} for i in range(101)],
        },
    )
    assert r.status == 422
