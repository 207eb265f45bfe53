"""Offline: attachments on demand, `sync --watch`, a restored server (epoch reset)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData

from tests.conftest import Api
from tests.offline_world import World, converged
from tracker.http.keys import CORE


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    return found


async def test_attachment_metadata_offline_and_bytes_on_demand(
    world: World, tmp_path: Path
) -> None:
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Files"})
    form = FormData()
    form.add_field("file", io.BytesIO(b"hello bytes"), filename="notes.txt",
                   content_type="text/plain")  # fmt: skip
    await world.call("POST", "/orgs/acme/projects/WEB/issues/1/attachments", world.ann, data=form)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    listed = await bob.cli("issue", "attachments", "WEB-1")
    assert listed.exit_code == 0, listed.output
    assert "notes.txt" in listed.output and "11" in listed.output
    folder = tmp_path / "downloads"
    fetched = await bob.cli("issue", "attachments", "WEB-1", "--download", str(folder))
    assert fetched.exit_code == 0, fetched.output
    (saved,) = folder.iterdir()
    assert saved.name.endswith("-notes.txt") and saved.read_bytes() == b"hello bytes"


async def test_writes_without_an_offline_form_are_refused_on_a_replica(world: World) -> None:
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Keep"})
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    result = await bob.cli("issue", "delete", "WEB-1")
    assert result.exit_code == 1 and "online-only on a replica" in result.output
    assert len(await world.issues()) == 1


async def test_watch_pulls_when_the_socket_pokes(world: World) -> None:
    from tracker.replica.watch import watch

    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    seen: list[Any] = []
    with bob.env():
        replica = bob.replica()
        task = asyncio.create_task(watch(replica, seen.append, rounds=2))
        while not seen:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the socket is open and subscribed
        await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann,
                         json={"title": "Poke"})  # fmt: skip
        await asyncio.wait_for(task, 20)
        replica.close()
    assert seen[1].pulled >= 1
    await converged(world, bob)


async def test_a_restored_server_recloning_keeps_pending_and_lists_acked(world: World) -> None:
    from tracker.storage.sync_state import renew_epoch

    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.create("WEB", "Acknowledged before the restore")
    await bob.sync()
    pending_key = bob.create("WEB", "Typed after")
    core = world.client.app[CORE]
    org_id = bob.journal()["meta"]["org_id"]
    async with core.tenants.lease(org_id) as db:
        await db.write(renew_epoch)  # what a restore from backup does
    result = await bob.cli("sync")
    assert result.exit_code == 3, result.output
    assert "history was restored" in result.output
    assert f"{pending_key} is now WEB-2" in result.output  # pending kept, pushed
    await converged(world, bob)


async def test_login_stores_a_refresh_token_0600_never_the_password(world: World) -> None:
    import json
    import stat

    device = await world.device(world.cat)
    result = await device.cli("login", world.url, "--email", "cat@example.com",
                              "--password-stdin", input="correct horse\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    (stored,) = device.home.glob("*/credentials.json")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    text = stored.read_text()
    assert "correct horse" not in text and json.loads(text)["refresh_token"]
    bad = await device.cli("login", world.url, "--email", "cat@example.com",
                           "--password-stdin", input="wrong\n")  # fmt: skip
    assert bad.exit_code == 1 and "wrong email or password" in bad.output
