"""GET /api/v1/orgs/{org}/ws: a real server, real WebSocket clients, real SQLite files."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tests.issues_world import World, join, make_world
from tests.ws_world import connect, expected_events, head, joined, ws_path
from tracker.http.keys import CORE
from tracker.http.ws import SESSION_COOKIE
from tracker.http.ws import hub_of as app_hub
from tracker.services import hub as hub_module
from tracker.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data", ws_auth_timeout=0.3, ws_heartbeat=30.0, ws_max_per_user=5,
        cors_origins=("https://ui.example",),
    )  # fmt: skip


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


def hub_of(world: World) -> Any:
    return app_hub(world.client.app)


# -- delivery ---------------------------------------------------------------------------


async def test_two_clients_get_a_third_partys_patch_as_one_frame(world: World) -> None:
    issue = await world.create(title="Before")
    a = await joined(world, world.viewer)
    b = await joined(world, world.developer)
    patch = {"title": "After", "priority": "major", "type": "bug"}
    status, _ = await world.call("PATCH", world.url(f"/issues/{issue['number']}"), json=patch)
    assert status == 200
    log = await world.changes()
    batch = log[-1]["batch"]
    batch_seq = max(r["seq"] for r in log if r["batch"] == batch)
    for sock in (a, b):
        event = await sock.next("event")
        assert event["seq"] == batch_seq and event["batch"] == batch
        assert event["event"] == "issue.updated" and event["project"] == "WEB"
        assert event["actor"]["id"] == world.owner["id"]
        assert event["issue"]["key"] == f"WEB-{issue['number']}"
        assert {(c["field"], c["old"], c["new"]) for c in event["changes"]} >= {
            ("title", "Before", "After"), ("priority", "normal", "major"),
        }  # fmt: skip
        assert {c["field"] for c in event["changes"]} == {"title", "priority", "type"}
        await sock.silent()  # one frame for the batch of three changes


async def test_hello_names_the_user_head_and_heartbeat(world: World) -> None:
    await world.create()
    sock = await joined(world, world.viewer, project=None)
    assert sock.hello is not None
    assert sock.hello["user"]["id"] == world.viewer["id"]
    assert sock.hello["head"] == await head(world)
    assert sock.hello["heartbeat"] == 30.0
    await sock.send(type="ping", id=7)
    assert await sock.next("pong") == {"type": "pong", "id": 7}


async def test_reconnect_with_since_replays_once_in_order_while_a_writer_runs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "CATCHUP_PAGE", 7)  # many pages: the seam moves
    first = await world.create(title="seen")
    since = await head(world)
    for n in range(60):
        await world.create(title=f"missed {n}")
    stop = asyncio.Event()

    async def writer() -> int:
        n = 0
        while not stop.is_set() or n < 20:
            await world.create(title=f"during {n}")
            n += 1
        return n

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.05)
    sock = await joined(world, world.viewer, since=since)
    await asyncio.sleep(0.3)
    stop.set()
    await task
    final = await head(world)
    got = await sock.events(final)
    want = await expected_events(world, world.project["id"], since)
    assert [e["seq"] for e in got] == want
    assert len({e["issue"]["id"] for e in got}) == len(got)
    assert first["id"] not in {e["issue"]["id"] for e in got}
    await sock.silent()


async def test_subscribe_without_since_starts_at_the_head(world: World) -> None:
    await world.create()
    sock = await joined(world, world.viewer)
    created = await world.create(title="live")
    event = await sock.next("event")
    assert event["event"] == "issue.created" and event["issue"]["id"] == created["id"]


async def test_too_far_behind_gets_resync(world: World) -> None:
    hub_of(world).limits = hub_module.Limits(catchup_max=3)
    for _ in range(5):
        await world.create()
    sock = await joined(world, world.viewer, project=None)
    await sock.send(type="subscribe", project="WEB", since=0)
    resync = await sock.next("resync")
    assert resync["project"] == "WEB" and resync["reason"] == "too_far_behind"
    await sock.send(type="subscribe", project="WEB", since=resync["head"])
    assert (await sock.next("subscribed"))["head"] == resync["head"]


# -- visibility ---------------------------------------------------------------------------


async def test_star_never_sees_a_private_project_and_removal_unsubscribes(world: World) -> None:
    """The viewer is a member of private A, not of private B; then is removed from A."""
    for key in ("A", "B"):
        await world.api.project(world.owner, world.org, key=f"{key}{key}", visibility="private")
    await join(world, world.owner, world.org, world.viewer, "AA", "viewer")
    sock = await joined(world, world.viewer, project="*")
    status, _ = await world.call("POST", world.url("/issues", project="BB"), json={"title": "s"})
    assert status == 201
    status, visible = await world.call("POST", world.url("/issues", project="AA"),
                                       json={"title": "open"})  # fmt: skip
    event = await sock.next("event")  # B's issue never came first
    assert event["issue"]["id"] == visible["id"] and event["project"] == "AA"
    status, _ = await world.call("DELETE", world.url(f"/members/{world.viewer['id']}", "AA"))
    assert status == 204
    gone = await sock.next("unsubscribed")
    assert gone == {"type": "unsubscribed", "project": "AA", "reason": "access_revoked"}
    for project in ("AA", "BB"):
        status, _ = await world.call("POST", world.url("/issues", project=project),
                                     json={"title": "after"})  # fmt: skip
        assert status == 201
    created = await world.create(title="WEB still flows")
    event = await sock.next("event")  # nothing of AA (or BB) before it
    assert event["issue"]["id"] == created["id"]
    await sock.silent()


async def test_explicit_subscription_to_a_hidden_project_is_not_found(world: World) -> None:
    await world.api.project(world.owner, world.org, key="SEC", visibility="private")
    sock = await joined(world, world.viewer, project=None)
    await sock.send(type="subscribe", project="SEC")
    error = await sock.next("error")
    assert error["code"] == "not_found"
    await sock.send(type="subscribe", project="NOPE")
    assert (await sock.next("error"))["code"] == "not_found"


async def test_deleted_project_unsubscribes_with_project_deleted(world: World) -> None:
    sock = await joined(world, world.developer)
    status, _ = await world.call("DELETE", world.url(""))
    assert status == 204
    gone = await sock.next("unsubscribed")
    assert gone["reason"] == "project_deleted" and gone["project"] == "WEB"


async def test_leaving_the_org_unsubscribes_then_closes_4404(world: World) -> None:
    sock = await joined(world, world.viewer)
    status, _ = await world.call("POST", f"/api/v1/orgs/{world.org['slug']}/leave",
                                 who=world.viewer)  # fmt: skip
    assert status in (200, 204)
    assert (await sock.next("unsubscribed"))["reason"] == "access_revoked"
    code, reason = await sock.closed()
    assert code == 4404 and reason


async def test_unknown_org_and_non_member_are_the_same_4404(world: World) -> None:
    results = []
    for slug, who in ((world.org["slug"], world.outsider), ("no-such-org", world.viewer)):
        sock = await connect(world.client, ws_path(world, slug), who)
        results.append(await sock.closed())
    assert results[0] == results[1] == (4404, "organization not found")


async def test_plain_get_is_426(world: World) -> None:
    response = await world.client.get(ws_path(world), headers=world.viewer["headers"])
    assert response.status == 426
    assert response.content_type == "application/problem+json"


# -- authentication ---------------------------------------------------------------------


async def test_auth_frame_authenticates_a_browser(world: World) -> None:
    sock = await connect(world.client, ws_path(world), None)
    await sock.send(type="auth", token=world.viewer["tokens"]["access_token"])
    hello = await sock.next("hello")
    assert hello["user"]["id"] == world.viewer["id"]


async def test_no_auth_in_time_closes_4401(world: World) -> None:
    sock = await connect(world.client, ws_path(world), None)
    assert (await sock.closed())[0] == 4401


async def test_bad_tokens_close_4401(world: World) -> None:
    for headers, query in (({"Authorization": "Bearer nope"}, ""), ({}, "?token=x"),
                           ({"Authorization": "Basic abc"}, "")):  # fmt: skip
        sock = await connect(world.client, ws_path(world) + query, None, headers=headers)
        code, reason = await sock.closed()
        assert code == 4401 and reason, (headers, query)
    sock = await connect(world.client, ws_path(world), None)
    await sock.send(type="subscribe", project="WEB")  # not an auth frame
    assert (await sock.closed())[0] == 4401


async def test_expired_token_closes_4401_unless_renewed(world: World) -> None:
    core = world.client.app[CORE]
    await world.call("GET", "/api/v1/users/me", who=world.viewer)
    await world.call("GET", "/api/v1/users/me", who=world.developer)
    versions = {u["id"]: core.user_states[u["id"]][0] for u in (world.viewer, world.developer)}
    core.tokens._ttl = 1  # tokens that expire in a second
    short, _ = core.tokens.issue_access(world.viewer["id"], versions[world.viewer["id"]])
    renewing, _ = core.tokens.issue_access(world.developer["id"], versions[world.developer["id"]])
    core.tokens._ttl = 900
    fresh, _ = core.tokens.issue_access(world.developer["id"], versions[world.developer["id"]])
    expiring = await connect(world.client, ws_path(world), None,
                             headers={"Authorization": f"Bearer {short}"})  # fmt: skip
    await expiring.next("hello")
    renewed = await connect(world.client, ws_path(world), None,
                            headers={"Authorization": f"Bearer {renewing}"})  # fmt: skip
    await renewed.next("hello")
    await renewed.send(type="auth", token=fresh)
    await renewed.next("authenticated")
    code, reason = await expiring.closed(timeout=10)  # 1 s token; slack for a loaded CI box
    assert (code, reason) == (4401, "token expired")
    await asyncio.sleep(0.3)
    await renewed.send(type="ping", id=1)
    assert (await renewed.next("pong"))["id"] == 1


async def test_session_cookie_needs_an_allowed_origin(world: World) -> None:
    token = world.viewer["tokens"]["access_token"]
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    foreign = await connect(world.client, ws_path(world), None,
                            headers={**cookie, "Origin": "https://evil.example"})  # fmt: skip
    code, reason = await foreign.closed()
    assert code == 4403 and "origin" in reason
    missing = await connect(world.client, ws_path(world), None, headers=cookie)
    assert (await missing.closed())[0] == 4403
    host = f"http://{world.client.host}:{world.client.port}"
    for origin in (host, "https://ui.example"):
        same = await connect(world.client, ws_path(world), None,
                             headers={**cookie, "Origin": origin})  # fmt: skip
        assert (await same.next("hello"))["user"]["id"] == world.viewer["id"]
        await same.ws.close()


# -- limits and bad frames ------------------------------------------------------------------


async def test_bad_frames_get_error_frames_and_the_socket_stays(world: World) -> None:
    sock = await joined(world, world.viewer, project=None)
    await sock.ws.send_str("not json{")
    assert (await sock.next("error"))["code"] == "bad_frame"
    await sock.send(type="dance")
    assert (await sock.next("error"))["code"] == "bad_frame"
    await sock.ws.send_str("[1, 2]")
    assert (await sock.next("error"))["code"] == "bad_frame"
    await sock.ws.send_bytes(b"\x00\x01")
    assert (await sock.next("error"))["code"] == "bad_frame"
    for bad in ({"project": 5}, {"project": "WEB", "since": -1}, {"project": "WEB", "since": "x"},
                {"project": "X" * 40}, {}):  # fmt: skip
        await sock.send(type="subscribe", **bad)
        assert (await sock.next("error"))["code"] == "bad_frame", bad
    await sock.send(type="subscribe", project="WEB")
    await sock.next("subscribed")
    created = await world.create()
    assert (await sock.next("event"))["issue"]["id"] == created["id"]


async def test_a_one_mib_frame_closes_1009_and_others_keep_going(world: World) -> None:
    other = await joined(world, world.developer)
    sock = await joined(world, world.viewer, project=None)
    await sock.ws.send_str("x" * (1024 * 1024))
    assert (await sock.closed())[0] == 1009
    created = await world.create()
    assert (await other.next("event"))["issue"]["id"] == created["id"]


async def test_a_thousand_frames_a_second_closes_4429(world: World) -> None:
    other = await joined(world, world.developer)
    sock = await joined(world, world.viewer, project=None)
    for n in range(1000):
        if sock.ws.closed:
            break
        await sock.ws.send_str(f'{{"type":"ping","id":{n}}}')
    code, reason = await sock.closed()
    assert code == 4429 and reason
    created = await world.create()
    assert (await other.next("event"))["issue"]["id"] == created["id"]


async def test_connections_per_user_are_capped(world: World) -> None:
    socks = [await joined(world, world.viewer, project=None) for _ in range(5)]
    extra = await connect(world.client, ws_path(world), world.viewer)
    code, reason = await extra.closed()
    assert code == 4429 and "connections" in reason
    await socks[0].ws.close()
    await asyncio.sleep(0.1)
    again = await joined(world, world.viewer, project=None)
    assert again.hello is not None


async def test_unsubscribe_stops_events(world: World) -> None:
    sock = await joined(world, world.viewer)
    await sock.send(type="unsubscribe", project="WEB")
    assert (await sock.next("unsubscribed"))["reason"] == "requested"
    await world.create()
    await sock.silent()


async def test_star_and_single_projects_do_not_mix(world: World) -> None:
    sock = await joined(world, world.viewer)
    await sock.send(type="subscribe", project="*")
    assert (await sock.next("error"))["code"] == "bad_frame"


async def test_closing_the_client_frees_the_hub(world: World) -> None:
    sock = await joined(world, world.viewer)
    assert hub_of(world).open_connections == 1
    await sock.ws.close()
    for _ in range(50):
        if hub_of(world).open_connections == 0:
            break
        await asyncio.sleep(0.02)
    assert hub_of(world).open_connections == 0
    await world.create()  # publishing to an org with no sockets is a no-op


async def test_a_peer_that_stops_answering_pings_is_dropped(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    from tracker.http.app import create_app

    client = await aiohttp_client(create_app(make_settings(tmp_path / "hb", ws_heartbeat=0.2)))
    api = Api(client)
    world = await make_world(api, client)
    ws = await client.ws_connect(ws_path(world), headers=world.viewer["headers"], autoping=False)
    started = time.monotonic()
    hub = app_hub(client.app)
    while hub.open_connections and time.monotonic() - started < 3:
        await asyncio.sleep(0.05)
    assert hub.open_connections == 0
    assert time.monotonic() - started < 1.0  # within two intervals (plus scheduling)
    await ws.close()


async def test_a_member_added_to_a_private_project_sees_it_with_star(world: World) -> None:
    await world.api.project(world.owner, world.org, key="SEC", visibility="private")
    sock = await joined(world, world.reporter, project="*")
    await join(world, world.owner, world.org, world.reporter, "SEC", "viewer")
    status, body = await world.call("POST", world.url("/issues", project="SEC"),
                                    json={"title": "now visible"})  # fmt: skip
    assert status == 201
    while (event := await sock.next("event"))["event"] != "issue.created":
        pass  # member.added of SEC first
    assert event["issue"]["id"] == body["id"]


async def test_a_client_that_never_reads_is_closed_4008_and_stalls_no_one(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    from tracker.http.app import create_app

    settings = make_settings(tmp_path / "slow", ws_queue_frames=50, ws_queue_bytes=4 * 1024 * 1024)
    client = await aiohttp_client(create_app(settings))
    world = await make_world(Api(client), client)
    issue = await world.create()
    texts = ["a" * 90_000, "b" * 90_000]  # every event frame carries ~180 KB (old + new)

    async def patches(n: int) -> float:
        started = time.perf_counter()
        for i in range(n):
            status, _ = await world.call("PATCH", world.url(f"/issues/{issue['number']}"),
                                         json={"description": texts[i % 2]})  # fmt: skip
            assert status == 200
        return n / (time.perf_counter() - started)

    fast = await joined(world, world.developer)
    received: list[int] = []

    async def read_fast() -> None:
        while True:
            received.append((await fast.next("event", timeout=30))["seq"])

    reader = asyncio.create_task(read_fast())
    second = await joined(world, world.reporter)
    second_reader = asyncio.create_task(second.events(10**9, timeout=60))
    healthy = await patches(20)  # the writer's rate with two healthy readers
    second_reader.cancel()
    await second.ws.close()
    slow = await connect(client, ws_path(world), world.viewer)  # never reads
    await slow.ws.send_str('{"type":"subscribe","project":"WEB"}')
    hub = app_hub(client.app)
    while hub.open_connections != 2:
        await asyncio.sleep(0.01)
    rates, sent = [], 20
    while hub.open_connections == 2 and sent < 400:
        rates.append(await patches(20))
        sent += 20
    assert hub.open_connections == 1, "the slow client was never closed"
    rates.append(await patches(20))
    sent += 20
    # The publisher never waits on a socket: the writer keeps its pace (loose bound: the
    # clients share this process and the box is shared; bench/cases_ws.py measures it).
    assert sorted(rates)[len(rates) // 2] > healthy * 0.3, (healthy, rates)
    final = await head(world)
    while not received or received[-1] < final:
        await asyncio.sleep(0.02)
    reader.cancel()
    assert len(received) == sent  # the healthy client got every event, once
    code, reason = await slow.closed(timeout=10)
    assert code == 4008 and "since" in reason


async def test_a_batch_is_rendered_once_for_every_subscriber(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = hub_module.render

    async def counting(core: Any, org_id: str, batches: Any) -> Any:
        calls.append(len(batches))
        return await real(core, org_id, batches)

    socks = [await joined(world, who) for who in (world.viewer, world.developer, world.owner)]
    socks.append(await joined(world, world.reporter, project="*"))
    monkeypatch.setattr(hub_module, "render", counting)
    await world.create(title="once")
    frames = [(await sock.ws.receive(timeout=5)).data for sock in socks]
    assert len(set(frames)) == 1  # the same bytes for everyone
    assert calls == [1]  # one render of one batch, not one per socket
