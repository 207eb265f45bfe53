"""Sync clients unused for RHYTHM_SYNC_CLIENT_TTL_DAYS expire: refused in words at once,
revoked with their stored answers by the sweep (docs/sync.md). Last-seen times are written
into the real tenant file (by the server's own connection), not faked."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, make_settings
from tests.sync_helpers import Replica, World
from tracker.domain.ids import iso, utcnow
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.settings import Settings

LONG_AGO = "2025-01-01T00:00:00.000000Z"


async def seen(world: World, client_id: str, at: str) -> None:
    """Back-date a client's last sight, written by the server's own connection (a serving
    Rhythm holds its open tenants: no other connection may write the file meanwhile)."""
    async with world.client.app[CORE].tenants.lease(world.org["id"]) as db:
        await db.write(
            lambda c: c.execute(
                "UPDATE sync_clients SET last_seen_at = ? WHERE id = ?", (at, client_id)
            )
        )


async def row(world: World, client_id: str) -> dict[str, Any]:
    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        found = conn.execute("SELECT * FROM sync_clients WHERE id = ?", (client_id,)).fetchone()
        results = conn.execute(
            "SELECT count(*) FROM sync_results WHERE client_id = ?", (client_id,)
        ).fetchone()[0]
        return {**dict(found), "results": results}

    async with world.client.app[CORE].tenants.lease(world.org["id"]) as db:
        return await db.read(read)


async def test_an_unused_client_expires_and_is_swept_with_its_answers(
    client: Any, api: Api, settings: Settings
) -> None:
    world = await World(client, api).build()
    old, fresh = Replica(world, world.dev), Replica(world, world.dev)
    await old.register(["WEB"])
    await fresh.register(["WEB"])
    body = await old.push(old.create("kept answer", world.web["id"]))
    assert body["results"][0]["status"] == "applied"
    assert (await row(world, old.client_id))["results"] == 1
    await seen(world, old.client_id, LONG_AGO)
    # refused at once, in words, before any sweep ran
    for refused in (await old.pull(status=403), await old.push(status=403)):
        assert refused["type"].endswith("client-revoked"), refused
        assert "not seen since 2025-01-01" in refused["detail"]
        assert "clone again" in refused["detail"]
    assert (await row(world, old.client_id))["revoked_at"] is None
    # the next push of any client of the org sweeps it: revoked, its answers gone
    await fresh.push(fresh.create("someone else's", world.web["id"]))
    swept = await row(world, old.client_id)
    assert swept["revoked_at"] is not None and swept["results"] == 0
    assert (await row(world, fresh.client_id))["revoked_at"] is None
    refused = await old.pull(status=403)
    assert "not seen since 2025-01-01" in refused["detail"], refused
    url = f"/api/v1/orgs/acme/sync/clients/{old.client_id}"
    r = await client.put(url, json={"scope": ["WEB"]}, headers=old.headers)
    assert r.status == 403 and (await r.json())["type"].endswith("client-revoked")


async def test_registering_sweeps_and_a_revoked_client_keeps_its_words(
    client: Any, api: Api, settings: Settings
) -> None:
    world = await World(client, api).build()
    old, gone = Replica(world, world.dev), Replica(world, world.dev)
    await old.register(["WEB"])
    await gone.register(["WEB"])
    await gone.push(gone.create("answer", world.web["id"]))
    await seen(world, gone.client_id, iso(utcnow() - timedelta(days=3)))  # a lost laptop
    r = await client.delete(f"/api/v1/orgs/acme/sync/clients/{gone.client_id}",
                            headers=gone.headers)  # fmt: skip
    assert r.status == 204
    await seen(world, old.client_id, LONG_AGO)
    await Replica(world, world.owner).register(["WEB"])
    assert (await row(world, old.client_id))["revoked_at"] is not None
    assert (await row(world, gone.client_id))["results"] == 0  # revoked: answers dropped
    refused = await gone.pull(status=403)
    assert "was revoked at" in refused["detail"]  # a DELETE is not called an expiry


async def test_pulling_keeps_a_client_alive(client: Any, api: Api, settings: Settings) -> None:
    world = await World(client, api).build()
    me = Replica(world, world.dev)
    await me.register(["WEB"])
    await me.snapshot()
    almost = iso(utcnow() - timedelta(days=10))  # old, but inside the TTL
    await seen(world, me.client_id, almost)
    await me.pull()
    assert (await row(world, me.client_id))["last_seen_at"] > almost


@pytest.fixture
def short_ttl(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "ttl", sync_client_ttl_days=1)


async def test_the_ttl_is_the_setting(aiohttp_client: Any, short_ttl: Settings) -> None:
    client = await aiohttp_client(create_app(short_ttl))
    world = await World(client, Api(client)).build()
    me = Replica(world, world.dev)
    await me.register(["WEB"])
    await me.pull()
    two_days = iso(utcnow() - timedelta(days=2))
    await seen(world, me.client_id, two_days)
    refused = await me.pull(status=403)
    assert "replicas unused for 1 days expire" in refused["detail"], refused
