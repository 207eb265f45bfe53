"""Org-membership writes are never half-committed: killed or failed between the system
commit and the tenant commit, the membership, its change rows and its event all end up
existing once (docs/architecture.md, "Membership writes")."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import tracker.core as core_module
from tests.conftest import Api, make_settings
from tests.test_http_orgs import ORGS, add_member, changes, system_rows, tenant_rows
from tracker.domain.changes import ChangeBatch
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services.member_log import replay_member_log
from tracker.services.runtime import Core
from tracker.storage import member_outbox

ROOT = Path(__file__).resolve().parent.parent


class Listener:
    """A background service that subscribes at start: it sees batches replayed at open."""

    name = "listener"

    def __init__(self, core: Core, seen: list[ChangeBatch]) -> None:
        self.core, self.seen = core, seen

    async def start(self) -> None:
        self.unsubscribe = self.core.events.subscribe(self.seen.append)

    async def stop(self) -> None:
        self.unsubscribe()


def on_disk(path: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


async def run_child(data: Path, op: str, hook: str, out: Path) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.member_crash_child", str(data), op, hook, str(out), cwd=ROOT
    )
    assert await asyncio.wait_for(child.wait(), 120) == -signal.SIGKILL
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("op", "hook"),
    [("remove", "before_tenant"), ("add", "before_tenant"), ("remove", "after_tenant")],
)
async def test_a_membership_change_killed_between_the_commits_is_whole_after_restart(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, op: str, hook: str
) -> None:
    data = tmp_path / "data"
    ids = await run_child(data, op, hook, tmp_path / "ids.json")
    org_id, bob = ids["org"], ids["bob"]
    system_db, tenant_db = data / "_system.db", data / org_id / "tracker.db"
    expected = "delete" if op == "remove" else "create"

    # What the kill left on disk: the system side committed with its queued intent.
    queued = on_disk(system_db, "SELECT * FROM member_outbox")
    assert [(q["org_id"], q["user_id"]) for q in queued] == [(org_id, bob)]
    member = on_disk(system_db, "SELECT role FROM org_members WHERE user_id = ?", bob)
    assert member == ([] if op == "remove" else [{"role": "admin"}])
    logged = on_disk(tenant_db, "SELECT batch FROM changes WHERE entity = 'org_member'"
                     " AND entity_id = ? AND op = ?", bob, expected)  # fmt: skip
    assert logged == ([] if hook == "before_tenant" else [{"batch": queued[0]["batch"]}])

    # Restart: the intent is completed before the first request is served.
    seen: list[ChangeBatch] = []
    monkeypatch.setattr(core_module, "CORE_SERVICES", (lambda core: Listener(core, seen),))
    client = await aiohttp_client(create_app(make_settings(data)))
    rows = [c for c in await changes(client, org_id, "org_member") if c["entity_id"] == bob]
    assert [(c["op"], c["batch"]) for c in rows if c["op"] == expected] == [
        (expected, queued[0]["batch"])
    ]
    assert await system_rows(client, "SELECT * FROM member_outbox") == []
    if hook == "before_tenant":  # published by the replay; after_tenant published before the kill
        assert [b.batch for b in seen] == [queued[0]["batch"]]
        assert (bob, expected) in [(c.entity_id, c.op) for c in seen[0].changes]
    else:
        assert seen == []
    response = await client.get(f"{ORGS}/acme", headers=ids["bob_headers"])
    if op == "remove":
        assert response.status == 404
        assert await tenant_rows(client, org_id, "SELECT * FROM project_members") == []
        dropped = await changes(client, org_id, "project_member")
        assert [(c["entity_id"], c["op"], c["batch"]) for c in dropped][-1:] == [
            (bob, "delete", queued[0]["batch"])
        ]
    else:
        assert response.status == 200 and (await response.json())["role"] == "admin"


async def test_a_failed_tenant_step_leaves_the_intent_queued_and_the_cache_honest(
    api: Api, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, bob, carol = await api.user(), await api.user(), await api.user()
    org = await api.org(owner, "acme")
    await add_member(client, owner, org, bob)
    assert (await client.get(f"{ORGS}/acme", headers=bob["headers"])).status == 200  # cached
    seen: list[ChangeBatch] = []
    client.app[CORE].events.subscribe(seen.append)

    def broken(*_: Any) -> bool:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:  # the tenant transaction fails at the storage boundary
        patch.setattr(member_outbox, "batch_logged", broken)
        response = await client.delete(f"{ORGS}/acme/members/{bob['id']}", headers=owner["headers"])
        assert response.status == 500
    assert (await client.get(f"{ORGS}/acme", headers=bob["headers"])).status == 404
    assert [c["op"] for c in await changes(client, org["id"], "org_member")] == ["create"]
    assert len(await system_rows(client, "SELECT * FROM member_outbox")) == 1
    assert seen == []

    # The org's next membership change completes the earlier one first, in order.
    await add_member(client, owner, org, carol)
    logged = [(c["entity_id"], c["op"]) for c in await changes(client, org["id"], "org_member")]
    assert logged[-2:] == [(bob["id"], "delete"), (carol["id"], "create")]
    assert [[(c.entity_id, c.op) for c in b.changes] for b in seen] == [
        [(bob["id"], "delete")], [(carol["id"], "create")]
    ]  # fmt: skip
    assert await system_rows(client, "SELECT * FROM member_outbox") == []


async def test_a_replayed_intent_already_in_the_log_is_not_written_twice(
    api: Api, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, bob = await api.user(), await api.user()
    org = await api.org(owner, "acme")
    core = client.app[CORE]
    seen: list[ChangeBatch] = []
    core.events.subscribe(seen.append)

    def broken(*_: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:  # tenant committed, deleting the intent fails
        patch.setattr(member_outbox, "remove", broken)
        body = {"user_id": bob["id"], "role": "member"}
        response = await client.post(f"{ORGS}/acme/members", json=body, headers=owner["headers"])
        assert response.status == 500
    assert len(seen) == 1 and len(await system_rows(client, "SELECT * FROM member_outbox")) == 1
    assert await replay_member_log(core) == 0
    assert len(seen) == 1
    assert await system_rows(client, "SELECT * FROM member_outbox") == []
    created = [c for c in await changes(client, org["id"], "org_member") if c["op"] == "create"]
    assert [c["entity_id"] for c in created] == [bob["id"]]
