"""Plugin mode as a product: the example host mounts Rhythm, signs people in itself,
and hears Rhythm's events in process; two instances in one process stay apart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from examples.host.app import HOST, HostUser, build_host
from tests.conftest import make_settings
from tracker import plugin
from tracker.domain.changes import ChangeBatch
from tracker.http.app import create_app
from tracker.services.accounts import Principal

API = "/tracker/api/v1"
LABEL = web.AppKey("label", str)


async def sign_in(client: TestClient, name: str, password: str) -> None:
    response = await client.post(
        "/login", data={"name": name, "password": password}, allow_redirects=False
    )
    assert response.status == 303


async def test_the_example_host_signs_in_creates_an_issue_and_hears_the_event(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    users = [HostUser.make("alice", "alice@host.example", "Alice", "wonderland")]
    app = build_host(make_settings(tmp_path / "data"), users)
    client = await aiohttp_client(app)
    host = app[HOST]

    assert (await client.get(f"{API}/users/me")).status == 401  # no host session
    response = await client.post("/login", data={"name": "alice", "password": "nope"})
    assert response.status == 401
    await sign_in(client, "alice", "wonderland")
    me = await client.get(f"{API}/users/me")
    assert me.status == 200, await me.text()
    account = await me.json()
    assert (account["email"], account["display_name"]) == ("alice@host.example", "Alice")
    assert (await (await client.get(f"{API}/users/me")).json())["id"] == account["id"]

    org = await (await client.post(f"{API}/orgs", json={"name": "Host Org"})).json()
    project = f"{API}/orgs/{org['slug']}/projects"
    assert (await client.post(project, json={"name": "Web", "key": "WEB"})).status == 201
    created = await client.post(f"{project}/WEB/issues", json={"title": "From the host"})
    assert created.status == 201, await created.text()

    assert host.subscription is not None
    await host.subscription.idle()  # delivery is asynchronous: wait for what was committed
    heard = [e for e in host.events if e["event"] == "issue.created"]
    assert len(heard) == 1
    assert heard[0]["issue"]["key"] == "WEB-1" and heard[0]["org_id"] == org["id"]
    assert heard[0]["origin"] == "plugin" and heard[0]["actor"]["id"] == account["id"]
    listed = await client.get("/events")
    assert any(e["event"] == "issue.created" for e in await listed.json())


async def test_two_instances_in_one_process_stay_apart(aiohttp_client: Any, tmp_path: Path) -> None:
    people: dict[str, str] = {}

    async def identity(request: web.Request) -> Principal | None:
        name = request.headers.get("X-Who")
        if name is None:
            return None
        user = await plugin.ensure_user(request.app, f"{name}@example.com")
        people[f"{name}@{request.app[LABEL]}"] = user.id
        return Principal(user.id)

    host = web.Application()
    seen: dict[str, list[ChangeBatch]] = {"a": [], "b": []}
    subscriptions = {}
    for label in ("a", "b"):
        sub = create_app(make_settings(tmp_path / label), identity=identity)
        sub[LABEL] = label

        async def on_batch(batch: ChangeBatch, label: str = label) -> None:
            seen[label].append(batch)

        subscriptions[label] = plugin.subscribe(sub, on_batch)
        host.add_subapp(f"/{label}/", sub)
    client = await aiohttp_client(host)

    made = await client.post(
        "/a/api/v1/orgs", json={"name": "Only A", "slug": "only-a"}, headers={"X-Who": "ann"}
    )
    assert made.status == 201
    a_orgs = await (await client.get("/a/api/v1/orgs", headers={"X-Who": "ann"})).json()
    b_orgs = await (await client.get("/b/api/v1/orgs", headers={"X-Who": "ann"})).json()
    assert [o["slug"] for o in a_orgs["items"]] == ["only-a"] and b_orgs["items"] == []
    assert (await client.get("/b/api/v1/orgs/only-a", headers={"X-Who": "ann"})).status == 404
    # the same person is a different account in each instance (separate system databases)
    assert people["ann@a"] != people["ann@b"]
    assert (tmp_path / "a" / "_system.db").exists() and (tmp_path / "b" / "_system.db").exists()
    await asyncio.gather(*(s.idle() for s in subscriptions.values()))
    org_id = (await made.json())["id"]
    assert seen["a"] and {batch.org_id for batch in seen["a"]} == {org_id}
    assert seen["b"] == []


def test_subscribing_after_the_app_started_is_refused(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data"))
    app.freeze()

    async def on_batch(batch: ChangeBatch) -> None:
        return None

    try:
        plugin.subscribe(app, on_batch)
    except RuntimeError as error:
        assert "before the app starts" in str(error)
    else:
        raise AssertionError("subscribe after freeze must fail")


async def test_a_failing_callback_is_logged_and_delivery_goes_on_in_order(
    core_factory: Any, caplog: Any
) -> None:
    from tracker.services.host_events import HostSubscriber

    core = await core_factory()
    got: list[int] = []

    async def on_batch(batch: ChangeBatch) -> None:
        if len(got) == 1 and batch.seq == 2:
            got.append(-batch.seq)
            raise ValueError("the host's bug")
        got.append(batch.seq)
        await asyncio.sleep(0)  # a callback that yields keeps the order anyway

    subscriber = HostSubscriber(core, on_batch=on_batch)
    await subscriber.start()
    org_id = "0190ffff-0000-7000-8000-00000000000a"
    for n in range(5):
        core.events.publish(ChangeBatch(org_id, f"b{n}", (_change(n + 1),)))
    await subscriber.idle()
    await subscriber.stop()
    assert got == [1, -2, 3, 4, 5]
    assert "the host callback failed on batch 2" in caplog.text


def _change(seq: int) -> Any:
    from tracker.domain.changes import Change

    return Change(
        seq,
        f"id{seq}",
        "2026-01-01T00:00:00Z",
        None,
        "api",
        "issue",
        "i1",
        None,
        "update",
        "title",
        "a",
        "b",
        "b",
    )
