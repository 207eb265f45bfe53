"""Custom fields, sprints and project members offline (docs/offline.md, docs/sync.md):
the snapshot and pull carry them, offline `--field`/`--sprint` edits sync with per-field
bases, and the replica's reads filter on them with the server's own code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.offline_world import Device, World, converged, view_issues
from tracker.errors import ValidationFailed

WEB = "/orgs/acme/projects/WEB"


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    return found


async def fields_and_sprints(world: World) -> dict[str, Any]:
    """WEB gets an enum `Severity`, a number `Points`, an active sprint S1 and a planned S2,
    and issue WEB-1 in S1 with Severity low."""
    severity = await world.call("POST", f"{WEB}/fields", world.ann, json={
        "name": "Severity", "type": "enum", "options": ["low", "medium", "high"]})  # fmt: skip
    points = await world.call("POST", f"{WEB}/fields", world.ann,
                              json={"name": "Points", "type": "number"})  # fmt: skip
    s1 = await world.call("POST", f"{WEB}/sprints", world.ann, json={
        "name": "S1", "starts_at": "2026-12-01", "ends_at": "2026-12-14"})  # fmt: skip
    await world.call("POST", f"{WEB}/sprints/{s1['id']}/start", world.ann)
    s2 = await world.call("POST", f"{WEB}/sprints", world.ann, json={"name": "S2"})
    await world.call("POST", f"{WEB}/issues", world.ann, json={
        "title": "Crash", "sprint_id": s1["id"], "custom_fields": {"Severity": "low"}})  # fmt: skip
    await world.call("POST", f"{WEB}/issues", world.ann, json={"title": "Backlog item"})
    return {"severity": severity, "points": points, "s1": s1, "s2": s2}


def member_names(device: Device) -> dict[str, str]:
    """Explicit members of WEB in the view: user id -> role."""
    rows = device.view_rows(
        "SELECT m.user_id, m.role FROM project_members m JOIN projects p ON p.id = m.project_id"
        " WHERE p.key = 'WEB'"
    )
    return {r["user_id"]: r["role"] for r in rows}


async def test_clone_brings_fields_sprints_and_members(world: World) -> None:
    made = await fields_and_sprints(world)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    fields = bob.view_rows("SELECT name, type, options FROM custom_fields ORDER BY name")
    assert [(f["name"], f["type"]) for f in fields] == [("Points", "number"), ("Severity", "enum")]
    assert fields[1]["options"] == '["low", "medium", "high"]'
    sprints = bob.view_rows("SELECT id, name, state FROM sprints ORDER BY name")
    assert [(s["name"], s["state"]) for s in sprints] == [("S1", "active"), ("S2", "planned")]
    (crash,) = [i for i in await view_issues(bob) if i["title"] == "Crash"]
    assert crash["custom_fields"] == {"Severity": "low"}
    assert crash["sprint_id"] == made["s1"]["id"]
    roles = member_names(bob)
    assert roles[world.bob["id"]] == "developer" and roles[world.cat["id"]] == "developer"
    # members' names come with them, never a password hash
    replica = bob.replica()
    try:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(replica.view / "_system.db")) as system:
            people = dict(system.execute("SELECT email, password_hash FROM users").fetchall())
    finally:
        replica.close()
    assert people["cat@example.com"] == "!"
    # the replica's reads filter on them with the server's code
    shown = await bob.cli("issue", "search", "sprint:current")
    assert shown.exit_code == 0, shown.output
    assert "Crash" in shown.output and "Backlog item" not in shown.output
    shown = await bob.cli("issue", "search", "Severity:low")
    assert shown.exit_code == 0, shown.output
    assert "Crash" in shown.output and "Backlog item" not in shown.output
    board = await bob.cli("board", "--sprint", "S1")
    assert board.exit_code == 0, board.output
    assert "Crash" in board.output and "Backlog item" not in board.output
    await converged(world, bob)


async def test_rest_changes_to_fields_sprints_and_members_arrive_by_pull(world: World) -> None:
    made = await fields_and_sprints(world)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    await world.call("PATCH", f"{WEB}/fields/{made['severity']['id']}", world.ann,
                     json={"options": ["low", "medium", "high", "blocker"]})  # fmt: skip
    await world.call("PATCH", f"{WEB}/fields/{made['points']['id']}", world.ann,
                     json={"name": "Story points"})  # fmt: skip
    await world.call("POST", f"{WEB}/sprints", world.ann, json={"name": "S3", "goal": "ship"})
    values = {"Severity": "blocker", "Story points": 5}
    await world.call("PATCH", f"{WEB}/issues/1", world.ann, json={"custom_fields": values})
    await world.call("PATCH", f"{WEB}/issues/2", world.ann, json={"sprint_id": made["s2"]["id"]})
    await world.call("PATCH", f"{WEB}/members/{world.cat['id']}", world.ann,
                     json={"role": "viewer"})  # fmt: skip
    await bob.sync()
    options = bob.view_rows("SELECT options FROM custom_fields WHERE name = 'Severity'")
    assert options[0]["options"] == '["low", "medium", "high", "blocker"]'
    assert bob.view_rows("SELECT goal FROM sprints WHERE name = 'S3'")[0]["goal"] == "ship"
    assert member_names(bob)[world.cat["id"]] == "viewer"
    by_title = {i["title"]: i for i in await view_issues(bob)}
    assert by_title["Crash"]["custom_fields"] == {"Severity": "blocker", "Story points": 5}
    assert by_title["Backlog item"]["sprint_id"] == made["s2"]["id"]
    await converged(world, bob)


async def test_offline_field_and_sprint_edits_sync_to_the_server(world: World) -> None:
    made = await fields_and_sprints(world)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    result = await bob.cli("issue", "update", "WEB-1", "--field", "severity=high",
                           "--field", "Points=3", "--sprint", "S2")  # fmt: skip
    assert result.exit_code == 0, result.output
    key = bob.create("WEB", "Made offline", fields={"Points": "8"}, sprint="S1")
    bob.update("WEB-2", sprint="S1")
    # the view shows the guesses at once, and filters on them
    mine = {i["title"]: i for i in await view_issues(bob)}
    assert mine["Crash"]["custom_fields"] == {"Severity": "high", "Points": 3}
    assert mine["Crash"]["sprint_id"] == made["s2"]["id"]
    current = await bob.cli("issue", "search", "sprint:current")
    assert "Backlog item" in current.output and "Crash" not in current.output
    pending = bob.journal()["pending"]
    update = next(m for m in pending if m.name == "issue.update")
    assert update.args["base"] == {"custom_fields": {"Severity": "low", "Points": None},
                                   "sprint_id": made["s1"]["id"]}  # fmt: skip
    report = await bob.sync()
    assert [r["status"] for _, r in report.pushed] == ["applied"] * 3
    crash = await world.issue("WEB-1")
    assert crash["custom_fields"] == {"Severity": "high", "Points": 3}
    assert crash["sprint_id"] == made["s2"]["id"]
    new = await world.issue(dict(report.renamed)[key])
    assert new["custom_fields"] == {"Points": 8} and new["sprint_id"] == made["s1"]["id"]
    assert (await world.issue("WEB-2"))["sprint_id"] == made["s1"]["id"]
    result = await bob.cli("issue", "update", "WEB-2", "--sprint", "none")
    assert result.exit_code == 0, result.output
    await bob.sync()
    assert (await world.issue("WEB-2"))["sprint_id"] is None
    await converged(world, bob)


async def test_bad_values_are_refused_in_words(world: World) -> None:
    made = await fields_and_sprints(world)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    refused = await bob.cli("issue", "update", "WEB-1", "--field", "Severity=huge")
    assert refused.exit_code != 0
    assert "Severity" in refused.output and "must be one of: low, medium, high" in refused.output
    with pytest.raises(ValidationFailed):
        bob.update("WEB-1", fields={"Nope": "1"})
    with pytest.raises(ValidationFailed):
        bob.update("WEB-1", fields={"Points": "many"})
    assert bob.journal()["pending"] == []
    # valid offline, invalid by the time it syncs: the option was removed meanwhile
    bob.update("WEB-1", fields={"Severity": "high"})
    await world.call("PATCH", f"{WEB}/fields/{made['severity']['id']}", world.ann,
                     json={"options": ["low", "medium"]})  # fmt: skip
    result = await bob.cli("sync")
    assert result.exit_code == 2, result.output
    assert "REJECTED WEB-1" in result.output and "[validation]" in result.output
    assert "must be one of: low, medium" in result.output
    assert (await world.issue("WEB-1"))["custom_fields"] == {"Severity": "low"}
    await converged(world, bob)


async def test_concurrent_field_edit_is_reported(world: World) -> None:
    await fields_and_sprints(world)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.update("WEB-1", fields={"Severity": "high", "Points": "2"})
    await world.call("PATCH", f"{WEB}/issues/1", world.cat,
                     json={"custom_fields": {"Severity": "medium"}})  # fmt: skip
    report = await bob.sync()
    ((_, outcome),) = report.pushed
    assert outcome["status"] == "conflict_applied"
    (conflict,) = outcome["conflicts"]  # Points had no other edit: no conflict
    assert conflict["field"] == "custom_fields.Severity"
    assert conflict["base"] == "low" and conflict["overwritten"] == "medium"
    assert conflict["overwritten_by"] == world.cat["id"]
    from tracker.replica.words import lines

    said = "\n".join(lines(report))
    assert "pushed 1: applied over another edit 1" in said
    assert "Severity was 'medium' (you last saw 'low')" in said
    issue = await world.issue("WEB-1")
    assert issue["custom_fields"] == {"Severity": "high", "Points": 2}
    await converged(world, bob)


async def test_a_member_removed_from_a_project_is_not_kept(world: World) -> None:
    await world.call("POST", "/orgs/acme/projects", world.ann,
                     json={"name": "Ops", "key": "OPS", "visibility": "private"})  # fmt: skip
    for person in (world.bob, world.cat):
        await world.call("POST", "/orgs/acme/projects/OPS/members", world.ann,
                         json={"email": person["email"], "role": "developer"})  # fmt: skip
    await world.call("POST", "/orgs/acme/projects/OPS/issues", world.ann, json={"title": "Sec"})
    bob, cat = await world.device(world.bob), await world.device(world.cat)
    await bob.clone("acme")
    await cat.clone("acme")
    ops_members = "SELECT m.user_id FROM project_members m JOIN projects p ON p.id = m.project_id"
    ops_members += " WHERE p.key = 'OPS'"
    assert world.bob["id"] in {r[0] for r in cat.view_rows(ops_members)}
    await world.call("DELETE", f"/orgs/acme/projects/OPS/members/{world.bob['id']}", world.ann)
    await cat.sync()
    assert world.bob["id"] not in {r[0] for r in cat.view_rows(ops_members)}
    await bob.sync()
    assert bob.view_rows("SELECT * FROM projects WHERE key = 'OPS'") == []
    assert (
        bob.view_rows(
            "SELECT * FROM project_members WHERE project_id NOT IN (SELECT id FROM projects)"
        )
        == []
    )  # OPS's members left with it
    # the org's directory follows the org: someone removed from it leaves the replica
    await world.call("DELETE", f"/orgs/acme/members/{world.cat['id']}", world.ann)
    await bob.sync()
    replica = bob.replica()
    try:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(replica.view / "_system.db")) as system:
            left = system.execute("SELECT 1 FROM org_members WHERE user_id = ?",
                                  (world.cat["id"],)).fetchall()  # fmt: skip
    finally:
        replica.close()
    assert left == []


async def test_a_replica_cloned_before_fields_were_sent_is_recloned_once(world: World) -> None:
    await fields_and_sprints(world)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    key = bob.create("WEB", "Typed offline", fields={"Points": "5"})
    replica = bob.replica()  # make it look like a replica of the previous format
    try:
        replica.journal.set(snapshot_format=None)
        for target in (replica.base, replica.view):
            import sqlite3
            from contextlib import closing

            from tracker.replica.engine import TENANT_DB

            with closing(sqlite3.connect(target / replica.org_id / TENANT_DB)) as conn:
                conn.execute("UPDATE issues SET custom_fields = '{}', sprint_id = NULL")
                conn.execute("DELETE FROM custom_fields")
                conn.execute("DELETE FROM sprints")
                conn.commit()
    finally:
        replica.close()
    report = await bob.sync()
    assert report.recloned and [r["status"] for _, r in report.pushed] == ["applied"]
    assert bob.journal()["meta"]["snapshot_format"] == "2"
    assert len(bob.view_rows("SELECT * FROM sprints")) == 2
    new = await world.issue(dict(report.renamed)[key])
    assert new["custom_fields"] == {"Points": 5}
    await converged(world, bob)
    again = await bob.sync()
    assert not again.recloned


async def test_people_on_issues_keep_their_names_after_leaving_the_org(world: World) -> None:
    await world.call("POST", f"{WEB}/issues", world.ann,
                     json={"title": "Theirs", "assignees": [world.cat["id"]]})  # fmt: skip
    await world.call("DELETE", f"/orgs/acme/members/{world.cat['id']}", world.ann)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    shown = await bob.cli("issue", "show", "WEB-1")
    assert shown.exit_code == 0, shown.output
    assert "assignees: cat@example.com" in shown.output
    replica = bob.replica()
    try:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(replica.view / "_system.db")) as system:
            emails = {r[0] for r in system.execute("SELECT email FROM users")}
            members = {r[0] for r in system.execute("SELECT user_id FROM org_members")}
    finally:
        replica.close()
    assert "cat@example.com" in emails and world.cat["id"] not in members
