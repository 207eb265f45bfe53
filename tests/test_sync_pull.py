"""Sync pull and snapshot: whole batches, visibility, scope changes, resets, consistency."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from tests.sync_helpers import Replica, World
from tracker.http.keys import CORE
from tracker.storage import sync_state


async def tenant_write(client: Any, org_id: str, fn: Any) -> Any:
    async with client.app[CORE].tenants.lease(org_id) as db:
        return await db.write(fn)


async def test_pages_never_split_a_batch_and_miss_nothing(client: Any, api: Any) -> None:
    world = await World(client, api).build()
    for n in range(6):  # each create with tags is a batch of several rows
        await world.issue(world.owner, tags=[f"t{n}", f"u{n}"], assignees=[world.dev["id"]])
    me = Replica(world, world.owner)
    await me.register()
    everything = await me.pull_all()
    pages: list[list[dict[str, Any]]] = []
    me.cursor = me.cursor.rsplit(".", 1)[0] + ".0"
    while True:
        page = await me.pull(limit=3)
        pages.append(page["items"])
        if not page["has_more"]:
            break
    assert [i["seq"] for p in pages for i in p] == [i["seq"] for i in everything]
    seqs = [i["seq"] for i in everything]
    assert seqs == sorted(set(seqs))
    seen_in: dict[str, int] = {}
    for number, page in enumerate(pages):
        for item in page:
            assert seen_in.setdefault(item["batch"], number) == number, "a batch was split"
    assert any(len({i["batch"] for i in p}) < len(p) for p in pages)  # batches of >1 row


async def test_visibility_and_scope_removed(client: Any, api: Any) -> None:
    world = await World(client, api).build()
    outsider = await api.user()
    await world.member(outsider, "member")
    await world.issue(world.owner, "OPS", title="secret")
    await world.issue(world.owner, "WEB", title="public")
    theirs = Replica(world, outsider)
    await theirs.register()
    items = await theirs.pull_all()
    ops_id = world.ops["id"]
    assert items and all(i["project"] != ops_id for i in items)
    assert "secret" not in str(items)
    # dev holds OPS, then loses it: told once, and no OPS row after
    mine = Replica(world, world.dev)
    await mine.register(["WEB", "OPS"])
    for n in range(9):  # pages of 7 cross kinds and projects
        issue = await world.issue(world.owner, ("WEB", "OPS")[n % 2], title=f"n{n}")
        r = await client.post(
            f"/api/v1/orgs/acme/projects/{('WEB', 'OPS')[n % 2]}/issues/{issue['number']}/comments",
            json={"body": f"c{n}"},
            headers=world.owner["headers"],
        )
        assert r.status == 201
    lines, _ = await mine.snapshot()
    keys = [(line["entity"], line["id"]) for line in lines]
    assert len(keys) == len(set(keys))
    kinds = [line["entity"] for line in lines]
    assert kinds.count("issue") == 11 and kinds.count("comment") == 9
    assert kinds.count("project") == 2
    first = await mine.pull()
    assert first["scope"]["projects"] == ["OPS", "WEB"] and first["scope"]["removed"] == []
    await world.remove_from_project(world.dev, "OPS")
    await world.issue(world.owner, "OPS", title="after removal")
    page = await mine.pull()
    assert page["scope"]["removed"] == ["OPS"]
    assert all(i["project"] != ops_id for i in page["items"])
    assert "after removal" not in str(page)
    assert (await mine.pull())["scope"]["removed"] == []  # said once


async def test_scope_added_asks_for_a_project_snapshot(client: Any, api: Any) -> None:
    world = await World(client, api).build()
    me = Replica(world, world.dev)
    await me.register(["WEB"])
    await me.snapshot()
    r = await client.put(
        f"/api/v1/orgs/acme/sync/clients/{me.client_id}",
        json={"scope": ["WEB", "OPS"]},
        headers=me.headers,
    )
    assert r.status == 200
    page = await me.pull()
    assert page["scope"]["added"] == ["OPS"] and page["scope"]["snapshot"] == ["OPS"]
    lines, _ = await me.snapshot("OPS")
    assert {line["project"] for line in lines} == {world.ops["id"]}
    assert (await me.pull())["scope"]["added"] == []


async def test_resets_epoch_compacted_future(client: Any, api: Any) -> None:
    world = await World(client, api).build()
    me = Replica(world, world.dev)
    await me.register()
    await me.pull_all()
    org_id = world.org["id"]
    await tenant_write(client, org_id, sync_state.renew_epoch)
    page = await me.pull()
    assert page["reset"] == {"reason": "epoch", "action": "resnapshot"} and page["items"] == []
    _, cursor = await me.snapshot()  # re-clone: the new epoch
    assert (await me.pull())["reset"] is None

    def compact(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE sync_state SET min_seq = (SELECT max(seq) FROM changes)")

    await world.issue(world.owner)
    await tenant_write(client, org_id, compact)
    me.cursor = cursor
    assert (await me.pull())["reset"]["reason"] == "compacted"
    epoch = cursor.rsplit(".", 1)[0]
    me.cursor = f"{epoch}.99999999"
    assert (await me.pull())["reset"]["reason"] == "epoch"


def materialize(
    lines: list[dict[str, Any]], items: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """A tiny replica: issues from snapshot lines, then change rows replayed in seq order."""
    issues = {line["id"]: dict(line["data"]) for line in lines if line["entity"] == "issue"}
    for item in items:
        if item["entity"] != "issue":
            continue
        if item["op"] in ("create", "restore"):
            issues[item["entity_id"]] = dict(item["new"])
        elif item["op"] == "delete":
            issues.pop(item["entity_id"], None)
        elif item["op"] == "update" and item["entity_id"] in issues:
            issues[item["entity_id"]][item["field"]] = item["new"]
    return issues


async def test_snapshot_consistent_while_a_writer_runs(client: Any, api: Any) -> None:
    world = await World(client, api).build()
    numbers = [(await world.issue(world.owner, title=f"i{n}"))["number"] for n in range(20)]
    me = Replica(world, world.dev)
    await me.register(["WEB"])
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            number = numbers[n % len(numbers)]
            await world.patch_issue(
                world.owner, "WEB", number, title=f"edit {n}", priority=("major", "minor")[n % 2]
            )
            if n % 5 == 0:
                await world.issue(world.owner, title=f"new {n}")
            n += 1

    task = asyncio.create_task(writer())
    try:
        lines, _ = await me.snapshot()
    finally:
        stop.set()
        await task
    items = await me.pull_all()
    replica = materialize(lines, items)
    r = await client.get(
        "/api/v1/orgs/acme/projects/WEB/issues?limit=200", headers=world.owner["headers"]
    )
    server = {i["id"]: i for i in (await r.json())["items"]}
    assert set(replica) == set(server)
    for issue_id, issue in server.items():
        assert (replica[issue_id]["title"], replica[issue_id]["priority"]) == (
            issue["title"],
            issue["priority"],
        )


async def test_snapshot_carries_attachment_metadata(client: Any, api: Any) -> None:
    from aiohttp import FormData

    world = await World(client, api).build()
    issue = await world.issue(world.owner)
    form = FormData()
    form.add_field("file", b"hello world", filename="a.txt", content_type="text/plain")
    r = await client.post(
        f"/api/v1/orgs/acme/projects/WEB/issues/{issue['number']}/attachments",
        data=form,
        headers=world.owner["headers"],
    )
    assert r.status == 201, await r.text()
    me = Replica(world, world.dev)
    await me.register(["WEB"])
    lines, _ = await me.snapshot()
    found = [line for line in lines if line["entity"] == "attachment"]
    assert len(found) == 1 and found[0]["data"]["filename"] == "a.txt"
    assert found[0]["data"]["size"] == 11 and found[0]["data"]["issue_id"] == issue["id"]
    me.cursor = me.cursor.rsplit(".", 1)[0] + ".0"
    items = await me.pull_all()
    assert any(i["entity"] == "attachment" and i["op"] == "create" for i in items)


async def test_access_gained_under_star_scope_is_added(client: Any, api: Any) -> None:
    world = await World(client, api).build()
    newcomer = await api.user()
    await world.member(newcomer, "member")
    me = Replica(world, newcomer)
    await me.register(["*"])
    lines, _ = await me.snapshot()
    assert {line["project"] for line in lines} == {world.web["id"]}
    await world.project_role(newcomer, "OPS", "viewer")
    page = await me.pull()
    assert page["scope"]["added"] == ["OPS"] and page["scope"]["snapshot"] == ["OPS"]
    assert page["scope"]["projects"] == ["OPS", "WEB"]


async def test_snapshot_carries_sprints_fields_and_members_of_its_scope(
    client: Any, api: Any
) -> None:
    world = await World(client, api).build()
    for key in ("WEB", "OPS"):
        r = await client.post(f"/api/v1/orgs/acme/projects/{key}/fields",
                              json={"name": f"{key} size", "type": "enum", "options": ["S", "L"]},
                              headers=world.owner["headers"])  # fmt: skip
        assert r.status == 201, await r.text()
        body = {"name": f"{key} sprint"}
        r = await client.post(f"/api/v1/orgs/acme/projects/{key}/sprints", json=body,
                              headers=world.owner["headers"])  # fmt: skip
        assert r.status == 201, await r.text()
    me = Replica(world, world.dev)
    await me.register(["WEB"])
    lines, _ = await me.snapshot()  # pages of 7 lines: the catalogues span pages
    kinds = list(dict.fromkeys(line["entity"] for line in lines))  # catalogues before issues
    assert kinds == ["project", "stage", "sprint", "custom_field", "project_member"]
    (field,) = [line["data"] for line in lines if line["entity"] == "custom_field"]
    assert field["name"] == "WEB size" and field["options"] == ["S", "L"]
    assert field["required"] is False
    (sprint,) = [line["data"] for line in lines if line["entity"] == "sprint"]
    assert sprint["name"] == "WEB sprint" and sprint["state"] == "planned"
    members = {line["data"]["user_id"]: line["data"] for line in lines
               if line["entity"] == "project_member"}  # fmt: skip
    mine = members[world.dev["id"]]
    assert mine["role"] == "developer" and mine["email"] == world.dev["email"]
    assert set(mine) == {"project_id", "user_id", "role", "created_at", "email", "display_name"}
    assert {m["project_id"] for m in members.values()} == {world.web["id"]}  # nothing of OPS
    # the same kinds reach the replica by pull, as change rows
    me.cursor = me.cursor.rsplit(".", 1)[0] + ".0"
    pulled = {(i["entity"], i["op"]) for i in await me.pull_all()}
    assert {
        ("custom_field", "create"),
        ("sprint", "create"),
        ("project_member", "create"),
    } <= pulled


async def test_a_page_token_of_the_older_kind_list_starts_over(client: Any, api: Any) -> None:
    import base64
    import json

    world = await World(client, api).build()
    me = Replica(world, world.dev)
    body = await me.register(["WEB"])
    # the previous server's token: 7 entries, kind 3 was `issue` (now `sprint`)
    old = json.dumps([body["epoch"], 0, 3, "", 0, "", None], separators=(",", ":"))
    token = base64.urlsafe_b64encode(old.encode()).decode().rstrip("=")
    r = await client.get("/api/v1/orgs/acme/sync/snapshot", headers=me.headers,
                         params={"client_id": me.client_id, "page_token": token})  # fmt: skip
    assert r.status == 200, await r.text()
    lines = (await r.text()).splitlines()
    assert json.loads(lines[0]) == {"reset": {"reason": "epoch", "action": "resnapshot"}}
    params = {"client_id": me.client_id, "page_token": "bm90IGEgbGlzdA"}  # "not a list"
    r = await client.get("/api/v1/orgs/acme/sync/snapshot", headers=me.headers, params=params)
    assert r.status == 400
