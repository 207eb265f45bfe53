"""GET /metrics: Prometheus text that parses, counters that move, and who may scrape."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Api, make_settings
from tracker.http.app import create_app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(scrape: dict[Any, float], name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: Any, **headers: str) -> dict[Any, float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(await response.text())


async def test_requests_are_counted_by_route_template_and_status(client: Any, api: Api) -> None:
    owner = await api.user()
    org = await api.org(owner)
    route = "/api/v1/orgs/{org}"
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/api/v1/orgs/{org['slug']}", headers=owner["headers"])).ok
    assert (await client.get(f"/api/v1/orgs/{org['slug']}")).status == 401
    assert (await client.get("/no/such/route")).status == 404
    assert (await client.request("PROPFIND", "/api/v1/health/live")).status == 405
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "GET", "route": route, "status": "200"}
    assert moved("rhythm_http_requests_total", **ok) == 3
    assert moved("rhythm_http_request_duration_seconds_count", **ok) == 3
    assert moved("rhythm_http_request_duration_seconds_bucket", le="+Inf", **ok) == 3
    assert value(after, "rhythm_http_request_duration_seconds_sum", **ok) > 0
    assert moved("rhythm_http_requests_total", method="GET", route=route, status="401") == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert moved("rhythm_http_requests_total", **unmatched) == 1
    # any method a client invents is "other": the series stay bounded
    assert moved("rhythm_http_requests_total", method="other", route="unmatched", status="405") == 1
    # the template, never the raw path: series stay bounded whatever the URLs
    assert not [key for key in after if ("route", f"/api/v1/orgs/{org['slug']}") in key[1]]
    # the previous scrape itself was counted
    assert value(after, "rhythm_http_requests_total", method="GET", route="/metrics",
                 status="200") >= 1  # fmt: skip


async def test_core_metrics_move_with_tenants_and_writes(client: Any, api: Api) -> None:
    owner = await api.user()
    before = await scrape(client)
    org = await api.org(owner)
    await api.project(owner, org)
    for n in range(3):
        response = await client.post(
            f"/api/v1/orgs/{org['slug']}/projects/WEB/issues",
            json={"title": f"issue {n}"},
            headers=owner["headers"],
        )
        assert response.status == 201, await response.text()
    after = await scrape(client)
    assert value(after, "rhythm_tenants_open") >= 1
    assert value(after, "rhythm_tenants_open_max") == 1024  # the default cap
    assert value(after, "rhythm_tenant_opens_total") > value(before, "rhythm_tenant_opens_total")
    assert value(after, "rhythm_tenant_opens_waiting") == 0  # one at a time: none waited
    groups = "rhythm_db_group_commit_units_count"
    assert value(after, groups) - value(before, groups) >= 4  # project + 3 issues, at least
    assert value(after, "rhythm_db_group_commit_units_sum") >= value(after, groups)
    # background consumers may have a cursor write queued right now: only its presence
    assert ("rhythm_db_write_queue_depth", (("db", "tenants"),)) in after
    assert value(after, "rhythm_db_wal_bytes", db="tenants") > 0  # the writes are in the WAL
    assert value(after, "rhythm_db_wal_bytes_max") > 0
    assert value(after, "rhythm_websocket_connections") == 0  # the hub runs, nobody is on
    assert value(after, "process_open_fds") > 0
    for name in ("rhythm_query_budget_hits_total", "rhythm_slow_queries_total"):
        assert (name, ()) in after


async def test_websocket_connections_are_counted(client: Any, api: Api) -> None:
    owner = await api.user()
    org = await api.org(owner)
    async with client.ws_connect(f"/api/v1/orgs/{org['slug']}/ws", headers=owner["headers"]) as ws:
        await ws.receive_json(timeout=5)  # the server's hello: the hub holds the socket
        assert value(await scrape(client), "rhythm_websocket_connections") == 1
    await ws.close()


async def test_non_loopback_clients_need_the_token(tmp_path: Path, aiohttp_client: Any) -> None:
    """Through a trusted proxy the forwarded client decides; without the setting the
    header is ignored and the loopback peer is what counts."""
    trusted = make_settings(tmp_path / "a", trusted_proxies=("127.0.0.1",), metrics_token="s3cret")
    client = await aiohttp_client(create_app(trusted))
    outside = {"X-Forwarded-For": "203.0.113.7"}
    refused = await client.get("/metrics", headers=outside)
    assert refused.status == 403
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert "rhythm_http" not in await refused.text()
    wrong = await client.get("/metrics", headers={**outside, "Authorization": "Bearer nope"})
    assert wrong.status == 403
    await scrape(client, **outside, Authorization="Bearer s3cret")
    await scrape(client, **{"X-Forwarded-For": "127.0.0.1"})  # a loopback client via the proxy

    untrusted = await aiohttp_client(create_app(make_settings(tmp_path / "b")))
    await scrape(untrusted, **outside)  # a header anyone can send is not believed


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent (UDP connect)
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_a_real_non_loopback_peer_needs_the_token(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    address = _outside_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    settings = make_settings(tmp_path / "d", metrics_token="s3cret")
    server = await aiohttp_server(create_app(settings), host="0.0.0.0")
    url = f"http://{address}:{server.port}/metrics"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            assert response.status == 403
        async with session.get(url, headers={"Authorization": "Bearer s3cret"}) as response:
            assert response.status == 200
            assert "rhythm_http_requests_total" in await response.text()
        async with session.get(f"http://127.0.0.1:{server.port}/metrics") as response:
            assert response.status == 200


async def test_metrics_can_be_turned_off(tmp_path: Path, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path / "d", metrics=False)))
    assert (await client.get("/metrics")).status == 404
    assert (await client.get("/api/v1/health/live")).status == 200


async def test_the_grafana_dashboard_reads_only_metrics_that_exist(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """Every metric docs/grafana-rhythm.json queries is one /metrics exposes."""
    settings = make_settings(tmp_path / "d", rate_limit_rps=100)  # the default server
    client = await aiohttp_client(create_app(settings))
    import json
    import re

    root = Path(__file__).resolve().parent.parent
    dashboard = json.loads((root / "docs" / "grafana-rhythm.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queried = {m for e in exprs for m in re.findall(r"\b((?:rhythm|process)_[a-z_]+)", e)}
    assert len(queried) >= 15
    text = await (await client.get("/metrics")).text()
    families = {f.name for f in text_string_to_metric_families(text)}
    for name in sorted(queried):
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert base in families, name
