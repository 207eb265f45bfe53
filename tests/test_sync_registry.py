"""The mutation registry walk (like the route walk): every mutation names a REST twin in
the route table with the same permission entry, and a role just below that entry is
rejected `forbidden` when the mutation is pushed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.sync_helpers import Replica, World
from tracker.domain.ids import new_id
from tracker.domain.permissions import RULES, ProjectRole
from tracker.http.routes import all_routes
from tracker.services.sync_mutations import REGISTRY

BELOW = {
    ProjectRole.REPORTER: "viewer",
    ProjectRole.DEVELOPER: "reporter",
    ProjectRole.ADMIN: "developer",
}


def test_every_mutation_has_the_permission_of_its_rest_twin() -> None:
    routes = {(r.method, r.path): r for r in all_routes()}
    assert REGISTRY
    for (name, v), definition in REGISTRY.items():
        twin = routes.get(definition.rest)
        assert twin is not None, f"{name}@{v}: no route {definition.rest}"
        assert twin.permission == definition.permission, f"{name}@{v} vs {twin.name}"
        assert RULES[definition.permission].project_role is not None


async def test_a_role_below_the_entry_is_rejected_forbidden(client: Any, api: Any) -> None:
    world = await World(client, api).build()
    me = Replica(world, world.dev)
    await me.register()
    stages = list((await world.stages()).values())
    issue = await world.issue(world.owner)
    deleted = await world.issue(world.owner)
    r = await client.delete(
        f"/api/v1/orgs/acme/projects/WEB/issues/{deleted['number']}", headers=world.owner["headers"]
    )
    assert r.status == 204
    other = await world.issue(world.owner)
    comment_id, tag_id, entry_id, pair_id = new_id(), new_id(), new_id(), new_id()
    setup = await me.push(
        me.mutation("comment.create", {"id": comment_id, "issue_id": issue["id"], "body": "a"}),
        me.mutation("tag.create", {"id": tag_id, "project_id": world.web["id"], "name": "t"}),
        me.mutation(
            "time_entry.create", {"id": entry_id, "issue_id": issue["id"], "seconds_spent": 60}
        ),
        me.mutation(
            "relation.add",
            {"id": pair_id, "issue_id": issue["id"], "kind": "blocks", "target_id": other["id"]},
        ),
    )
    assert {r["status"] for r in setup["results"]} == {"applied"}
    web, i = world.web["id"], issue["id"]
    args: dict[str, Callable[[], dict[str, Any]]] = {
        "issue.create": lambda: {"id": new_id(), "project_id": web, "title": "x"},
        "issue.update": lambda: {"id": i, "set": {"title": "y"}, "base": {}},
        "issue.set_status": lambda: {"id": i, "from_stage": stages[0], "to_stage": stages[1]},
        "issue.set_description": lambda: {"id": i, "base": "", "text": "z"},
        "issue.assignees": lambda: {"id": i, "add": [world.dev["id"]]},
        "issue.tags": lambda: {"id": i, "add": [tag_id]},
        "issue.delete": lambda: {"id": i},
        "issue.restore": lambda: {"id": deleted["id"]},
        "comment.create": lambda: {"id": new_id(), "issue_id": i, "body": "b"},
        "comment.edit": lambda: {"id": comment_id, "base": "a", "body": "c"},
        "comment.delete": lambda: {"id": comment_id},
        "time_entry.create": lambda: {"id": new_id(), "issue_id": i, "seconds_spent": 60},
        "tag.create": lambda: {"id": new_id(), "project_id": web, "name": "u"},
        "time_entry.delete": lambda: {"id": entry_id},
        "relation.add": lambda: {
            "id": new_id(),
            "issue_id": i,
            "kind": "relates_to",
            "target_id": other["id"],
        },
        "relation.remove": lambda: {"id": pair_id, "issue_id": i},
    }
    assert {name for name, _ in REGISTRY} == set(args), "give every mutation arguments here"
    for (name, v), definition in REGISTRY.items():
        needed = RULES[definition.permission].project_role
        assert needed is not None
        await world.project_role(world.dev, "WEB", BELOW[needed])
        body = await me.push(me.mutation(name, args[name](), v))
        result = body["results"][0]
        assert result["status"] == "rejected", (name, result)
        assert result["problem"]["code"] == "forbidden", (name, result)
