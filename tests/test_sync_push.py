"""Sync push: exactly once, gaps, reuse, deferral, conflict rules, rejection codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.sync_helpers import Replica, World
from tracker.domain.ids import new_id
from tracker.http.keys import CORE


async def tenant_read(client: Any, org_id: str, sql: str, *args: Any) -> list[Any]:
    async with client.app[CORE].tenants.lease(org_id) as db:
        return await db.read(lambda conn: [tuple(r) for r in conn.execute(sql, args)])


async def setup(client: Any, api: Any) -> tuple[World, Replica]:
    world = await World(client, api).build()
    me = Replica(world, world.dev)
    await me.register()
    return world, me


async def test_exactly_once_replays_stored_results(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    create = me.create("Crash on login", world.web["id"], priority="major")
    issue_id = create["args"]["id"]
    comment = me.mutation("comment.create", {"id": new_id(), "issue_id": issue_id, "body": "Seen"})
    tag_id = new_id()
    tag = me.mutation("tag.create", {"id": tag_id, "project_id": world.web["id"], "name": "bug"})
    link = me.mutation("issue.tags", {"id": issue_id, "add": [tag_id]})
    batch = [create, comment, tag, link]
    first = await me.push(*batch)
    assert [r["status"] for r in first["results"]] == ["applied"] * 4, first
    assert first["results"][0]["assigned"]["key"].startswith("WEB-")
    assert first["last_mutation_id"] == 4 and first["incomplete"] is False
    org = world.org["id"]
    rows_before = await tenant_read(client, org, "SELECT count(*) FROM changes")
    again = await me.push(*batch)  # the answer was lost; the client retries
    assert all(r.pop("replayed") for r in again["results"])
    assert again["results"] == first["results"]
    assert await tenant_read(client, org, "SELECT count(*) FROM changes") == rows_before
    assert await tenant_read(client, org, "SELECT count(*) FROM issues WHERE id = ?", issue_id) == [
        (1,)
    ]
    assert await tenant_read(client, org, "SELECT count(*) FROM comments") == [(1,)]
    rows = await tenant_read(
        client,
        org,
        "SELECT origin, client_id, mutation_id, meta FROM changes "
        "WHERE client_id IS NOT NULL ORDER BY seq",
    )
    assert {r[0] for r in rows} == {"sync"} and {r[1] for r in rows} == {me.client_id}
    assert {r[2] for r in rows} == {1, 2, 3, 4}
    assert all(json.loads(r[3])["client_at"] == "2026-01-01T00:00:00Z" for r in rows)
    issue = await world.get_issue(world.owner, "WEB", first["results"][0]["assigned"]["number"])
    assert issue["tags"] == ["bug"] and issue["comment_count"] == 1


async def test_gap_and_reuse_are_409_and_apply_nothing(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    first = me.create("one", world.web["id"])
    await me.push(first)
    skipped = {**me.create("three", world.web["id"]), "id": 3}
    body = await me.push(skipped, status=409)
    assert body["type"].endswith("mutation-gap") and body["last_mutation_id"] == 1
    copied = {**me.create("another one", world.web["id"]), "id": 1}
    body = await me.push(copied, status=409)
    assert body["type"].endswith("client-id-reused")
    org = world.org["id"]
    assert await tenant_read(client, org, "SELECT count(*) FROM issues") == [(1,)]


async def test_unknown_mutation_is_deferred_head_of_line(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    ok = me.create("fine", world.web["id"])
    future = me.mutation("issue.update", {"id": new_id(), "set": {}}, v=2)
    after = me.create("after", world.web["id"])
    body = await me.push(ok, future, after)
    assert [r["status"] for r in body["results"]] == ["applied", "deferred"]
    assert body["last_mutation_id"] == 1
    body = await me.push(future, after)
    assert [r["status"] for r in body["results"]] == ["deferred"]
    org = world.org["id"]
    assert await tenant_read(client, org, "SELECT count(*) FROM issues") == [(1,)]


async def test_scalar_conflict_per_field(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    issue = await world.issue(world.owner)
    await world.patch_issue(world.owner, "WEB", issue["number"], priority="minor")
    body = await me.push(
        me.mutation(
            "issue.update",
            {"id": issue["id"], "set": {"priority": "major"}, "base": {"priority": "normal"}},
        )
    )
    result = body["results"][0]
    assert result["status"] == "conflict_applied"
    conflict = result["conflicts"][0]
    assert conflict["overwritten"] == "minor" and conflict["overwritten_by"] == world.owner["id"]
    assert (await world.get_issue(world.owner, "WEB", issue["number"]))["priority"] == "major"
    metas = await tenant_read(
        client, world.org["id"], "SELECT meta FROM changes WHERE client_id = ?", me.client_id
    )
    assert json.loads(metas[0][0])["conflict"][0]["field"] == "priority"
    # a concurrent edit of another field is no conflict
    await world.patch_issue(world.owner, "WEB", issue["number"], title="renamed")
    body = await me.push(
        me.mutation(
            "issue.update",
            {"id": issue["id"], "set": {"priority": "critical"}, "base": {"priority": "major"}},
        )
    )
    assert body["results"][0]["status"] == "applied"
    body = await me.push(
        me.mutation(
            "issue.update",
            {"id": issue["id"], "set": {"priority": "critical"}, "base": {"priority": "major"}},
        )
    )
    assert body["results"][0]["status"] == "noop"


async def test_stale_status_move_is_rejected(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    stages = await world.stages()
    names = list(stages)
    todo, doing, done = stages[names[0]], stages[names[1]], stages[names[-1]]
    issue = await world.issue(world.owner)
    await world.patch_issue(world.owner, "WEB", issue["number"], status=names[-1])
    move = {"id": issue["id"], "from_stage": todo, "to_stage": doing}
    body = await me.push(me.mutation("issue.set_status", move))
    result = body["results"][0]
    assert result["status"] == "rejected" and result["problem"]["code"] == "stale_transition"
    assert result["problem"]["current"] == done
    assert (await world.get_issue(world.owner, "WEB", issue["number"]))["status"] == names[-1]
    same = {"id": issue["id"], "from_stage": todo, "to_stage": done}
    assert (await me.push(me.mutation("issue.set_status", same)))["results"][0]["status"] == "noop"
    back = {"id": issue["id"], "from_stage": done, "to_stage": todo}
    assert (await me.push(me.mutation("issue.set_status", back)))["results"][0][
        "status"
    ] == "applied"


async def test_description_three_way_merge(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    base = "line 1\nline 2\nline 3\nline 4\nline 5\n"
    issue = await world.issue(world.owner, description=base)
    await world.patch_issue(
        world.owner, "WEB", issue["number"], description=base.replace("line 1", "LINE ONE")
    )
    mine = base.replace("line 5", "LINE FIVE")
    body = await me.push(
        me.mutation("issue.set_description", {"id": issue["id"], "base": base, "text": mine})
    )
    assert body["results"][0]["status"] == "merged"
    now = (await world.get_issue(world.owner, "WEB", issue["number"]))["description"]
    assert "LINE ONE" in now and "LINE FIVE" in now
    metas = await tenant_read(
        client, world.org["id"], "SELECT meta FROM changes WHERE client_id = ?", me.client_id
    )
    assert json.loads(metas[-1][0])["merge"] == "clean"
    # overlapping: the server keeps its text, mine comes back recoverable
    theirs = now.replace("line 3", "THEIR 3")
    await world.patch_issue(world.owner, "WEB", issue["number"], description=theirs)
    mine = now.replace("line 3", "MY 3")
    body = await me.push(
        me.mutation("issue.set_description", {"id": issue["id"], "base": now, "text": mine})
    )
    result = body["results"][0]
    assert result["status"] == "kept_both" and result["draft"]["text"] == mine
    assert (await world.get_issue(world.owner, "WEB", issue["number"]))["description"] == theirs
    # a merged result over the limit is a validation rejection
    huge = "x" * (100 * 1024) + "\n"
    body = await me.push(
        me.mutation(
            "issue.set_description", {"id": issue["id"], "base": theirs, "text": theirs + huge}
        )
    )
    assert body["results"][0]["problem"]["code"] == "validation"


async def test_comment_edit_merges_and_delete_wins(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    issue = await world.issue(world.owner)
    comment_id = new_id()
    await me.push(
        me.mutation(
            "comment.create", {"id": comment_id, "issue_id": issue["id"], "body": "a\nb\nc\n"}
        )
    )
    body = await me.push(
        me.mutation("comment.edit", {"id": comment_id, "base": "a\nb\nc\n", "body": "a\nb\nC\n"})
    )
    assert body["results"][0]["status"] == "applied"
    r = await client.delete(
        f"/api/v1/orgs/acme/projects/WEB/issues/{issue['number']}", headers=world.owner["headers"]
    )
    assert r.status == 204
    body = await me.push(
        me.mutation("comment.create", {"id": new_id(), "issue_id": issue["id"], "body": "late"}),
        me.mutation("issue.update", {"id": issue["id"], "set": {"title": "x"}, "base": {}}),
    )
    assert [r["problem"]["code"] for r in body["results"]] == ["target_deleted"] * 2


async def test_tag_name_collision_becomes_an_alias(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    other = Replica(world, world.owner)
    await other.register()
    issue = await world.issue(world.owner)
    first = new_id()
    await other.push(
        other.mutation(
            "tag.create", {"id": first, "project_id": world.web["id"], "name": "regression"}
        )
    )
    mine = new_id()
    body = await me.push(
        me.mutation(
            "tag.create", {"id": mine, "project_id": world.web["id"], "name": "Regression"}
        ),
        me.mutation("issue.tags", {"id": issue["id"], "add": [mine]}),
    )
    assert body["results"][0]["status"] == "noop"
    assert body["results"][0]["alias"] == {"requested": mine, "actual": first}
    assert body["results"][1]["status"] == "applied"
    assert (await world.get_issue(world.owner, "WEB", issue["number"]))["tags"] == ["regression"]
    count = await tenant_read(client, world.org["id"], "SELECT count(*) FROM tags")
    assert count == [(1,)]


async def test_rejection_codes(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    issue = await world.issue(world.owner)
    ops_issue = await world.issue(world.owner, "OPS")
    far = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    dup = {"id": issue["id"], "project_id": world.web["id"], "title": "dup"}
    batch = (
        me.mutation("issue.create", dup),
        me.mutation(
            "time_entry.create",
            {"id": new_id(), "issue_id": issue["id"], "seconds_spent": 60, "logged_at": far},
        ),
        me.mutation("issue.update", {"id": issue["id"], "set": {"priority": "urgent!"}}),
        me.mutation("issue.update", {"id": new_id(), "set": {"title": "ghost"}}),
        me.mutation("comment.create", {"id": "not-a-uuid", "issue_id": issue["id"], "body": "x"}),
    )
    body = await me.push(*batch)
    codes = [r["problem"]["code"] for r in body["results"]]
    assert codes == ["id_conflict", "clock", "validation", "not_found", "validation"], body
    assert body["results"][1]["problem"]["server_date"] == datetime.now(UTC).date().isoformat()
    assert body["last_mutation_id"] == 5  # rejected mutations are consumed
    again = await me.push(*batch)
    assert [r.pop("replayed") for r in again["results"]] == [True] * 5
    assert again["results"] == body["results"]
    # permissions revoked while offline: viewer in WEB, removed from private OPS
    await world.project_role(world.dev, "WEB", "viewer")
    await world.remove_from_project(world.dev, "OPS")
    body = await me.push(
        me.mutation("comment.create", {"id": new_id(), "issue_id": issue["id"], "body": "hi"}),
        me.mutation("comment.create", {"id": new_id(), "issue_id": ops_issue["id"], "body": "hi"}),
        me.create("new", world.web["id"]),
    )
    codes = [r["problem"]["code"] for r in body["results"]]
    assert codes == ["forbidden", "not_found", "forbidden"], body
    assert "WEB" in body["results"][0]["problem"]["detail"]
    count = await tenant_read(client, world.org["id"], "SELECT count(*) FROM comments")
    assert count == [(0,)]


async def test_transition_rule_and_parent_cycle(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    stages = list((await world.stages()).values())
    rules = {"rules": [{"from_stage_id": stages[0], "to_stage_id": stages[1]}]}
    r = await client.put(
        "/api/v1/orgs/acme/projects/WEB/transitions", json=rules, headers=world.owner["headers"]
    )
    assert r.status == 200, await r.text()
    issue = await world.issue(world.owner)
    jump = {"id": issue["id"], "from_stage": stages[0], "to_stage": stages[-1]}
    body = await me.push(me.mutation("issue.set_status", jump))
    assert body["results"][0]["problem"]["code"] == "transition_forbidden", body
    x = await world.issue(world.owner, title="x")
    y = await world.issue(world.owner, title="y", parent=x["number"])
    body = await me.push(
        me.mutation(
            "issue.update", {"id": x["id"], "set": {"title": "renamed", "parent_id": y["id"]}}
        )
    )
    assert body["results"][0]["problem"]["code"] == "conflict", body
    after = await world.get_issue(world.owner, "WEB", x["number"])
    assert (after["parent"], after["title"]) == (None, "x")  # all or nothing


async def test_provisional_keys_in_text_become_real_keys(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    create = me.create("offline", world.web["id"])
    issue_id = create["args"]["id"]
    provisional = f"WEB-~{issue_id[-5:]}"
    other = Replica(world, world.owner)
    await other.register()
    foreign = other.create("theirs", world.web["id"])
    await other.push(foreign)
    theirs = f"WEB-~{foreign['args']['id'][-5:]}"
    comment_id = new_id()
    body = await me.push(
        create,
        me.mutation(
            "comment.create",
            {"id": comment_id, "issue_id": issue_id, "body": f"see {provisional} and {theirs}"},
        ),
    )
    key = body["results"][0]["assigned"]["key"]
    rows = await tenant_read(
        client, world.org["id"], "SELECT body FROM comments WHERE id = ?", comment_id
    )
    assert rows == [(f"see {key} and {theirs}",)]  # another client's key is left as typed


async def test_relations_and_time_entries(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    a, b = await world.issue(world.owner), await world.issue(world.owner, "OPS")
    pair, entry = new_id(), new_id()
    link = {"id": pair, "issue_id": a["id"], "kind": "blocks", "target_id": b["id"]}
    body = await me.push(
        me.mutation("relation.add", link),
        me.mutation("relation.add", {**link, "id": new_id()}),
        me.mutation("time_entry.create", {"id": entry, "issue_id": a["id"], "seconds_spent": 90}),
    )
    assert [r["status"] for r in body["results"]] == ["applied", "noop", "applied"], body
    org = world.org["id"]
    rows = await tenant_read(
        client, org, "SELECT type FROM relations WHERE pair_id = ? ORDER BY type", pair
    )
    assert rows == [("blocks",), ("is_blocked_by",)]
    assert (await world.get_issue(world.owner, "WEB", a["number"]))["time_spent"] == 90
    body = await me.push(
        me.mutation("relation.remove", {"id": pair, "issue_id": b["id"]}),
        me.mutation("relation.remove", {"id": pair, "issue_id": a["id"]}),
        me.mutation("time_entry.delete", {"id": entry}),
        me.mutation("time_entry.delete", {"id": entry}),
    )
    assert [r["status"] for r in body["results"]] == ["applied", "noop", "applied", "noop"]
    assert await tenant_read(client, org, "SELECT count(*) FROM relations") == [(0,)]
    # a target in a project the pusher cannot see reads as not found
    await world.remove_from_project(world.dev, "OPS")
    body = await me.push(me.mutation("relation.add", {**link, "id": new_id()}))
    assert body["results"][0]["problem"]["code"] == "not_found"


async def test_old_answers_expire_and_retries_say_so(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    first = me.create("one", world.web["id"])
    await me.push(first)

    def age(conn: Any) -> None:
        conn.execute("UPDATE sync_results SET at = '2000-01-01T00:00:00.000Z'")

    async with client.app[CORE].tenants.lease(world.org["id"]) as db:
        await db.write(age)
    await me.push(me.create("two", world.web["id"]))  # prunes the aged answer
    body = await me.push(first)
    assert body["results"] == [
        {"id": 1, "status": "noop", "replayed": True, "result_expired": True}
    ]
    count = await tenant_read(client, world.org["id"], "SELECT count(*) FROM issues")
    assert count == [(2,)]


async def test_user_field_values_must_see_the_project_as_in_rest(client: Any, api: Any) -> None:
    world, me = await setup(client, api)
    r = await client.post("/api/v1/orgs/acme/projects/OPS/fields",
                          json={"name": "Owner", "type": "user"},
                          headers=world.owner["headers"])  # fmt: skip
    assert r.status == 201, await r.text()
    outsider = await api.user()
    await world.member(outsider, "member")  # in the org, but OPS is private
    issue = await world.issue(world.dev, "OPS")
    answer = await me.push(
        me.mutation("issue.update", {"id": issue["id"], "base": {"custom_fields": {"Owner": None}},
                                     "set": {"custom_fields": {"owner": outsider["id"]}}}),
        me.mutation("issue.update", {"id": issue["id"], "base": {"custom_fields": {"Owner": None}},
                                     "set": {"custom_fields": {"owner": world.dev["id"]}}}),
    )  # fmt: skip
    refused, applied = answer["results"]
    assert refused["status"] == "rejected" and refused["problem"]["code"] == "validation"
    assert applied["status"] == "applied"  # a lower-case name is the field, with its base
    after = await world.get_issue(world.owner, "OPS", issue["number"])
    assert after["custom_fields"] == {"Owner": world.dev["id"]}
