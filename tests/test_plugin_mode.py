"""Plugin mode: a host aiohttp app mounts Rhythm with add_subapp and its own identity."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.conftest import make_settings
from tracker.http.app import create_app
from tracker.services.accounts import Principal


async def test_host_mounts_rhythm_with_its_own_identity(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data")
    host_users: dict[str, str] = {}

    async def identity(request: web.Request) -> Principal | None:
        """The host's own session scheme: here a header naming the host user."""
        name = request.headers.get("X-Host-User")
        return Principal(host_users[name]) if name in host_users else None

    host = web.Application()

    async def home(request: web.Request) -> web.Response:
        return web.Response(text="host home")

    host.router.add_get("/", home)
    host.add_subapp("/tracker/", create_app(settings, identity=identity))
    client = await aiohttp_client(host)

    # The host provisions its user in Rhythm's accounts (same core, same data dir).
    response = await client.post(
        "/tracker/api/v1/auth/register", json={"email": "host@example.com", "password": "x" * 12}
    )
    assert response.status == 201
    host_users["alice"] = (await response.json())["id"]

    assert (await client.get("/")).status == 200
    assert (await client.get("/tracker/api/v1/users/me")).status == 401
    me = await client.get("/tracker/api/v1/users/me", headers={"X-Host-User": "alice"})
    assert me.status == 200
    assert (await me.json())["email"] == "host@example.com"

    created = await client.post(
        "/tracker/api/v1/orgs", json={"name": "Host Org"}, headers={"X-Host-User": "alice"}
    )
    assert created.status == 201
    # Changes made through the plugin door carry origin "plugin".
    from tracker.http.keys import CORE

    sub = next(app for app in host._subapps)  # the mounted Rhythm app
    org_id = (await created.json())["id"]
    async with sub[CORE].tenants.lease(org_id) as db:
        origins = await db.read(lambda c: [r[0] for r in c.execute("SELECT origin FROM changes")])
    assert origins and set(origins) == {"plugin"}


async def test_a_mounted_app_serves_the_websocket_with_the_hosts_identity(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "data")
    users: dict[str, str] = {}

    async def identity(request: web.Request) -> Principal | None:
        name = request.headers.get("X-Host-User")
        return Principal(users[name]) if name in users else None

    host = web.Application()
    host.add_subapp("/tracker/", create_app(settings, identity=identity))
    client = await aiohttp_client(host)
    account = {"email": "ws-host@example.com", "password": "x" * 12}
    users["bob"] = (
        await (await client.post("/tracker/api/v1/auth/register", json=account)).json()
    )["id"]
    who = {"X-Host-User": "bob"}
    org = await (
        await client.post("/tracker/api/v1/orgs", json={"name": "Host WS"}, headers=who)
    ).json()
    project = {"name": "Web", "key": "WEB"}
    base = f"/tracker/api/v1/orgs/{org['slug']}"
    assert (await client.post(f"{base}/projects", json=project, headers=who)).status == 201
    ws = await client.ws_connect(f"{base}/ws", headers=who)
    assert (await ws.receive_json(timeout=5))["user"]["id"] == users["bob"]
    await ws.send_json({"type": "subscribe", "project": "WEB"})
    assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
    created = await client.post(f"{base}/projects/WEB/issues", json={"title": "hi"}, headers=who)
    event = await ws.receive_json(timeout=5)
    assert event["event"] == "issue.created" and event["origin"] == "plugin"
    assert event["issue"]["id"] == (await created.json())["id"]
    closing = asyncio.create_task(client.server.close())  # the host shuts down
    msg = await ws.receive(timeout=10)  # its shutdown reaches the mounted app's sockets
    assert (msg.type, ws.close_code) == (WSMsgType.CLOSE, 1001)
    await closing
