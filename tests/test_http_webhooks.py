"""Webhooks over HTTP with a real receiver on 127.0.0.1 (RHYTHM_WEBHOOK_ALLOW_PRIVATE=true):
CRUD and its change log, signed delivery, retries, 410, redirects, ping, redeliver, refusals."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tests.webhook_receiver import Receiver, free_port, verify
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services.webhook_delivery import WebhookService, running
from tracker.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", webhook_allow_private=True)


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = await Receiver().start()
    yield found
    await found.stop()


async def hook(world: World, url: str, events: list[str] | None = None, **extra: Any) -> Any:
    status, body = await world.call(
        "POST", world.url("/webhooks"), json={"url": url, "events": events or ["*"], **extra}
    )
    assert status == 201, body
    return body


async def restart_sender(world: World, **options: Any) -> WebhookService:
    """Stop the core's sender and run one built with injected options (delays, give-up);
    it is registered on the core, so the core stops it at the end."""
    core = world.client.app[CORE]
    old = running(core)
    assert old is not None
    await old.stop()
    service = WebhookService(core, **options)
    core.background.add(service)
    await core.background.start()
    return service


def sender(world: World) -> WebhookService:
    found = running(world.client.app[CORE])
    assert found is not None
    return found


async def settled(world: World, timeout: float = 15.0) -> None:
    """Wait until no delivery is pending (retries included) and nothing is in flight."""
    deadline = time.monotonic() + timeout
    while await world.rows("SELECT 1 FROM webhook_deliveries WHERE status = 'pending'"):
        assert time.monotonic() < deadline, "deliveries still pending"
        await asyncio.sleep(0.02)
    await sender(world).idle()


async def test_crud_secret_shown_once_and_logged_without_it(world: World) -> None:
    created = await hook(world, "http://127.0.0.1:9/x?token=abc", ["issue.created"])
    secret = created["secret"]
    assert len(secret) >= 32 and created["secret_hint"] == "…" + secret[-4:]
    status, got = await world.call("GET", world.url(f"/webhooks/{created['id']}"))
    assert status == 200 and "secret" not in got and got["events"] == ["issue.created"]
    status, patched = await world.call(
        "PATCH", world.url(f"/webhooks/{created['id']}"),
        json={"events": ["issue.status_changed", "issue.created"], "secret": "n" * 20},
    )  # fmt: skip
    assert status == 200 and patched["events"] == ["issue.created", "issue.status_changed"]
    assert patched["secret_hint"] == "…nnnn"
    status, page = await world.call("GET", world.url("/webhooks"), world.owner)
    assert [h["id"] for h in page["items"]] == [created["id"]]
    assert (await world.call("DELETE", world.url(f"/webhooks/{created['id']}")))[0] == 204
    assert (await world.call("GET", world.url(f"/webhooks/{created['id']}")))[0] == 404
    log = await world.changes("webhook")
    assert [(c["op"], c["field"]) for c in log] == [
        ("create", None), ("update", "events"), ("update", "secret"), ("delete", None),
    ]  # fmt: skip
    assert log[0]["new"]["url"] == "http://127.0.0.1:9"  # the origin only: paths carry tokens
    raw = json.dumps(await world.rows("SELECT * FROM changes"))
    assert secret not in raw and "n" * 20 not in raw and "token=abc" not in raw
    assert await world.count("webhooks") == 0


async def test_bad_input_is_the_documented_4xx(world: World) -> None:
    cases: list[tuple[dict[str, Any], dict[str, Any] | None, int]] = [
        ({"url": "http://127.0.0.1/h", "events": ["issue.exploded"]}, None, 422),
        ({"url": "http://127.0.0.1/h", "events": []}, None, 422),
        ({"url": "http://127.0.0.1/h", "events": ["*", "issue.created"]}, None, 422),
        ({"url": "file:///etc/passwd", "events": ["*"]}, None, 422),
        ({"url": "ftp://example.com/x", "events": ["*"]}, None, 422),
        ({"url": "gopher://example.com/x", "events": ["*"]}, None, 422),
        ({"url": "example.com/hook", "events": ["*"]}, None, 422),
        ({"url": "http://user:pass@example.com/", "events": ["*"]}, None, 422),
        ({"url": "https://example.com/" + "a" * 10_000, "events": ["*"]}, None, 422),
        ({"url": "https://example.com/", "events": ["*"], "secret": "short"}, None, 422),
        ({"url": "https://example.com/", "events": ["*"], "color": "red"}, None, 422),
        ({"url": "https://example.com/", "events": ["*"]}, world.developer, 403),
        ({"url": "https://example.com/", "events": ["*"]}, world.reporter, 403),
        ({"url": "https://example.com/", "events": ["*"]}, world.outsider, 404),
    ]
    for body, who, expected in cases:
        status, problem = await world.call("POST", world.url("/webhooks"), who, json=body)
        assert status == expected, (body, problem)
    assert await world.count("webhooks") == 0
    for path in ("/webhooks/nope", "/webhooks/00000000-0000-7000-8000-000000000000/deliveries"):
        assert (await world.call("GET", world.url(path)))[0] == 404
    assert (await world.call("GET", world.url("/webhooks?cursor=%%%")))[0] == 400


async def test_blocked_literals_refused_at_creation_by_default(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path / "strict")))
    world = await make_world(Api(client), client)
    for url in ("http://127.0.0.1:8080/h", "http://127.1/", "http://0x7f000001/",
                "http://2130706433/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/",
                "http://localhost/", "http://10.0.0.1/", "http://[fd00::1]/"):  # fmt: skip
        status, problem = await world.call(
            "POST", world.url("/webhooks"), json={"url": url, "events": ["*"]}
        )
        assert status == 422, (url, problem)
        assert "blocked_address" in problem["errors"][0]["message"], (url, problem)


async def test_delivery_is_signed_and_logged(world: World, receiver: Receiver) -> None:
    created = await hook(world, receiver.url, ["issue.created"])
    await world.create(title="Hello")
    await world.call("PATCH", world.url("/issues/1"), json={"priority": "major"})  # not asked for
    (got,) = await receiver.wait_for(1)
    await sender(world).idle()
    assert len(receiver.received) == 1
    event = json.loads(got.body)
    assert event["event"] == "issue.created" and event["issue"]["title"] == "Hello"
    assert got.headers["X-Rhythm-Event"] == "issue.created"
    assert verify(created["secret"], got.headers, got.body)
    assert not verify(created["secret"], got.headers, got.body.replace(b"Hello", b"Hellp"))
    later = {**got.headers, "X-Rhythm-Timestamp": str(int(got.headers["X-Rhythm-Timestamp"]) + 1)}
    assert not verify(created["secret"], later, got.body)
    assert not verify("another-secret-value", got.headers, got.body)
    base = world.url(f"/webhooks/{created['id']}/deliveries")
    _, page = await world.call("GET", base)
    (summary,) = page["items"]
    assert summary["id"] == got.delivery and summary["status"] == "delivered"
    _status, detail = await world.call("GET", f"{base}/{got.delivery}")
    assert detail["request"]["body"].encode() == got.body
    assert detail["request"]["headers"]["X-Rhythm-Signature"] == got.headers["X-Rhythm-Signature"]
    assert detail["response"] == {"status": 200, "body": "answer 200"}
    assert [a["status_code"] for a in detail["attempts"]] == [200]
    assert detail["next_attempt_at"] is None and detail["seq"] == event["seq"]


async def test_500_twice_then_200_three_attempts_growing_delays(
    world: World, receiver: Receiver
) -> None:
    from tracker.services.counters import WEBHOOK_DELIVERIES  # what /metrics reports

    await restart_sender(world, schedule=lambda n: 0.25 * 2**n)  # 0.5 s, then 1 s
    created = await hook(world, receiver.url, ["issue.created"])
    receiver.answers = [500, 500]
    before = dict(WEBHOOK_DELIVERIES)
    await world.create()
    received = await receiver.wait_for(3)
    await settled(world)
    assert len({r.delivery for r in received}) == 1
    assert all(verify(created["secret"], r.headers, r.body) for r in received)
    first_gap, second_gap = received[1].at - received[0].at, received[2].at - received[1].at
    assert 0.45 <= first_gap < second_gap and second_gap >= 0.95, (first_gap, second_gap)
    path = world.url(f"/webhooks/{created['id']}/deliveries/{received[0].delivery}")
    _status, detail = await world.call("GET", path)
    assert [a["status_code"] for a in detail["attempts"]] == [500, 500, 200]
    assert detail["status"] == "delivered"
    assert len(receiver.received) == 3
    moved = {k: WEBHOOK_DELIVERIES[k] - before.get(k, 0) for k in ("retry", "delivered")}
    assert moved == {"retry": 2, "delivered": 1}


async def test_failed_after_give_up_and_410_disables(world: World, receiver: Receiver) -> None:
    await restart_sender(world, schedule=lambda n: 0.05, give_up_after=0.3)
    created = await hook(world, receiver.url, ["issue.created"])
    receiver.answers = [503] * 100
    await world.create()
    await receiver.wait_for(2)
    await settled(world)
    (row,) = await world.rows("SELECT status, attempt_count FROM webhook_deliveries")
    assert row["status"] == "failed" and 2 <= row["attempt_count"] <= 8
    receiver.answers = [410]
    before = len(receiver.received)
    await world.create()
    # A background consumer makes the delivery row: until it exists nothing is pending,
    # so wait for the 410 to arrive before settling.
    await receiver.wait_for(before + 1)
    await settled(world)
    _status, got = await world.call("GET", world.url(f"/webhooks/{created['id']}"))
    assert got["enabled"] is False and got["disabled_reason"] == "gone"
    last = (await world.changes("webhook"))[-1]
    assert (last["field"], last["new"], last["actor"], last["origin"]) == (
        "enabled", False, None, "system",
    )  # fmt: skip
    count = len(receiver.received)
    await world.create()
    await sender(world).idle()
    assert len(receiver.received) == count  # disabled: nothing more is sent


async def test_redirects_are_not_followed(world: World, receiver: Receiver) -> None:
    await restart_sender(world, schedule=lambda n: 60.0)

    async def redirect(request: web.Request) -> web.StreamResponse | None:
        if request.path == "/hook":
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        return None

    receiver.on_request = redirect
    created = await hook(world, receiver.url, ["issue.created"])
    await world.create()
    await receiver.wait_for(1)
    await sender(world).idle()
    assert [r.path for r in receiver.received] == ["/hook"]
    (row,) = await world.rows("SELECT id, status FROM webhook_deliveries")
    path = world.url(f"/webhooks/{created['id']}/deliveries/{row['id']}")
    _status, detail = await world.call("GET", path)
    assert row["status"] == "pending" and detail["next_attempt_at"] is not None
    assert [(a["status_code"], a["error"]) for a in detail["attempts"]] == [
        (302, "redirect_not_followed")
    ]


async def test_ping_rate_limit_redeliver_same_id(world: World, receiver: Receiver) -> None:
    created = await hook(world, receiver.url, ["issue.created"])
    base = world.url(f"/webhooks/{created['id']}")
    status, ping = await world.call("POST", base + "/ping")
    assert status == 202 and ping["event"] == "ping"
    (got,) = await receiver.wait_for(1)
    assert got.headers["X-Rhythm-Event"] == "ping" and got.delivery == ping["id"]
    assert (await world.call("POST", base + "/ping"))[0] == 429
    await world.create()
    await receiver.wait_for(2)
    await sender(world).idle()
    event_delivery = receiver.received[1].delivery
    status, again = await world.call("POST", f"{base}/deliveries/{event_delivery}/redeliver")
    assert status == 202 and again["id"] == event_delivery
    third = (await receiver.wait_for(3))[2]
    assert third.delivery == event_delivery and third.body == receiver.received[1].body
    await sender(world).idle()
    status, detail = await world.call("GET", f"{base}/deliveries/{event_delivery}")
    assert len(detail["attempts"]) == 2 and detail["status"] == "delivered"
    for who, expected in ((world.developer, 403), (world.outsider, 404)):
        assert (await world.call("POST", base + "/ping", who))[0] == expected
    missing = "00000000-0000-7000-8000-000000000000"
    assert (await world.call("POST", f"{base}/deliveries/{missing}/redeliver"))[0] == 404


async def test_events_after_creation_only_matching_names_and_project(
    world: World, receiver: Receiver
) -> None:
    await world.create(title="before the hook")
    await hook(world, receiver.url, ["issue.status_changed"])
    await world.api.project(world.owner, world.org, key="OPS")
    other = await world.client.post(
        world.url("/issues", project="OPS"), json={"title": "ops"}, headers=world.owner["headers"]
    )
    assert other.status == 201
    await world.call("PATCH", world.url("/issues/1"), json={"status": "In Progress"})
    await world.call("PATCH", world.url("/issues/1"), json={"title": "renamed"})
    (got,) = await receiver.wait_for(1)
    await sender(world).idle()
    assert len(receiver.received) == 1 and json.loads(got.body)["event"] == "issue.status_changed"


async def test_delivery_log_pagination(world: World, receiver: Receiver) -> None:
    created = await hook(world, receiver.url, ["issue.created"])
    for n in range(5):
        await world.create(title=f"issue {n}")
    await receiver.wait_for(5)
    await sender(world).idle()
    seen: list[int] = []
    cursor = ""
    while True:
        path = world.url(f"/webhooks/{created['id']}/deliveries?limit=2{cursor}")
        status, page = await world.call("GET", path)
        assert status == 200
        seen += [d["seq"] for d in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == sorted(seen, reverse=True) and len(seen) == 5


async def test_a_slow_receiver_does_not_delay_another(
    aiohttp_client: Any, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(
        tmp_path / "slow", webhook_allow_private=True, webhook_timeout_seconds=1.5
    )
    client = await aiohttp_client(create_app(settings))
    world = await make_world(Api(client), client)
    service = await restart_sender(world, schedule=lambda n: 60.0)
    slow = await Receiver(delay=30.0).start()
    try:
        await hook(world, slow.url, ["issue.created"])
        await hook(world, receiver.url, ["issue.created"])
        started = time.monotonic()
        await world.create()
        await receiver.wait_for(1)
        assert time.monotonic() - started < 1.0  # while the slow one still hangs
        await slow.wait_for(1)
        await service.idle()
        errors = await world.rows("SELECT error FROM webhook_attempts WHERE error IS NOT NULL")
        assert [r["error"] for r in errors] == ["timeout"]
        assert time.monotonic() - started < 5.0
    finally:
        await slow.stop()


async def test_a_huge_response_is_read_at_most_64_kib(world: World, receiver: Receiver) -> None:
    sent = []

    async def flood(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            for _ in range(1600):  # 100 MiB if anyone read it all
                await response.write(chunk)
                sent.append(len(chunk))
        except (ConnectionError, RuntimeError):
            pass
        return response

    receiver.on_request = flood
    created = await hook(world, receiver.url, ["issue.created"])
    await world.create()
    await receiver.wait_for(1)
    await sender(world).idle()
    (row,) = await world.rows("SELECT id, length(response_body) AS n FROM webhook_deliveries")
    assert row["n"] == 4096
    assert sum(sent) < 16 * 1024 * 1024  # the socket was closed long before 100 MiB
    assert created["id"]


async def test_a_dead_receiver_backlog_lives_in_sqlite_and_arrives_in_order(
    world: World,
) -> None:
    """1,000 changes while the receiver is down: retained memory does not grow with the
    backlog, the rows wait in SQLite, and all arrive in seq order once it is back."""
    service = await restart_sender(world, schedule=lambda n: 0.3)
    receiver = Receiver(port=free_port())  # nothing listens there yet
    await hook(world, receiver.url, ["issue.created"])
    url = world.url("/issues")

    async def changes(count: int, start: int) -> None:
        for n in range(start, start + count):
            response = await world.client.post(
                url, json={"title": f"issue {n}"}, headers=world.owner["headers"]
            )
            assert response.status == 201

    await changes(100, 0)
    await service.consumer.idle()
    tracemalloc.start()
    try:
        before = _retained()
        await changes(900, 100)
        await service.consumer.idle()
        grown = _retained() - before
    finally:
        tracemalloc.stop()
    pending = await world.rows(
        "SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'"
    )
    assert pending[0]["n"] == 1000
    assert len(service._workers) <= 1 and len(service._due) <= 1
    assert grown < 150_000, grown  # 900 more pending deliveries hold no memory of their own
    attempts = await world.count("webhook_attempts")
    assert attempts < 100  # only the head of the line was tried, not every delivery
    await receiver.start()
    try:
        received = await receiver.wait_for(1000, timeout=60)
        await settled(world)
    finally:
        await receiver.stop()
    seqs = [json.loads(r.body)["seq"] for r in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == 1000 and len(received) == 1000


def _retained() -> int:
    """Bytes still held that were allocated by the webhook code paths."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, f"*{name}") for name in _WEBHOOK_FILES]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


_WEBHOOK_FILES = (
    "webhook_delivery.py", "webhook_outcomes.py", "storage/webhooks.py", "outbound/webhooks.py",
    "event_objects.py", "feed_consumer.py", "services/feed.py",
)  # fmt: skip


async def test_a_forbidden_url_in_the_database_is_blocked_at_send(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """A hook row holding a loopback URL (saved while private targets were allowed) is
    refused at send without opening a socket: the listener counts zero connections."""
    connections = []

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client = await aiohttp_client(create_app(make_settings(tmp_path / "strict")))
    world = await make_world(Api(client), client)
    try:
        created = await hook(world, "https://hooks.example.com/x", ["issue.created"])
        core = client.app[CORE]
        async with core.tenants.lease(world.org["id"]) as db:
            await db.write(lambda conn: conn.execute(
                "UPDATE webhooks SET url = ? WHERE id = ?",
                (f"http://127.0.0.1:{port}/hook", created["id"]),
            ))  # fmt: skip
        await world.create()
        await settled(world)
        (row,) = await world.rows("SELECT status, attempt_count FROM webhook_deliveries")
        assert (row["status"], row["attempt_count"]) == ("blocked", 1)
        (attempt,) = await world.rows("SELECT error FROM webhook_attempts")
        assert attempt["error"] == "blocked_address" and connections == []
    finally:
        listener.close()
        await listener.wait_closed()


async def test_hooks_queued_behind_a_slow_host_leave_the_global_slots_free(
    aiohttp_client: Any, tmp_path: Path, receiver: Receiver
) -> None:
    """Two global slots, one per host: three hooks stuck on a slow host must not take both
    global slots while they wait for their host, or another host would starve."""
    settings = make_settings(
        tmp_path / "slots", webhook_allow_private=True, webhook_concurrency=2,
        webhook_host_concurrency=1, webhook_timeout_seconds=3.0,
    )  # fmt: skip
    client = await aiohttp_client(create_app(settings))
    world = await make_world(Api(client), client)
    await restart_sender(world, schedule=lambda n: 60.0)
    slow = await Receiver(delay=30.0).start()
    try:
        for _ in range(3):
            await hook(world, slow.url, ["issue.created"])  # host 127.0.0.1
        await hook(world, f"http://localhost:{receiver.port}/hook", ["issue.created"])
        started = time.monotonic()
        await world.create()
        await receiver.wait_for(1, timeout=2.5)  # before the slow host's first timeout
        assert time.monotonic() - started < 2.5
    finally:
        await slow.stop()
