"""Rate limits: token buckets per user (per address when anonymous), 429 with headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Api, make_settings
from tracker.http.app import create_app
from tracker.http.ratelimit import TokenBuckets

ME = "/api/v1/users/me"


async def limited(tmp_path: Path, aiohttp_client: Any, **overrides: Any) -> Any:
    """A token every 10 s: no test here runs long enough to see one come back."""
    limits: dict[str, Any] = {"rate_limit_rps": 0.1, "rate_limit_burst": 5, **overrides}
    settings = make_settings(tmp_path / "d", **limits)
    return await aiohttp_client(create_app(settings))


async def test_a_burst_over_the_limit_gets_429_and_other_users_do_not(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await limited(tmp_path, aiohttp_client, rate_limit_burst=30)
    api = Api(client)
    alice, bob = await api.user(), await api.user()  # sign-ups spend the address's bucket
    answers = [await client.get(ME, headers=alice["headers"]) for _ in range(31)]
    assert [r.status for r in answers[:30]] == [200] * 30
    assert answers[0].headers["RateLimit-Policy"] == '"default";q=30;w=300'
    assert answers[0].headers["RateLimit"].startswith('"default";r=')
    refused = answers[30]
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 10  # a token every 10 s
    assert refused.headers["RateLimit"] == '"default";r=0;t=300'
    assert refused.headers["RateLimit-Policy"] == '"default";q=30;w=300'
    problem = await refused.json()
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert problem["status"] == 429 and problem["request_id"] == refused.headers["X-Request-Id"]
    # Bob, from the same address, has his own bucket
    assert (await client.get(ME, headers=bob["headers"])).status == 200
    # health and /metrics are exempt, even for the throttled
    for _ in range(10):
        assert (await client.get("/api/v1/health/live", headers=alice["headers"])).status == 200
    metrics = await client.get("/metrics")
    assert 'rhythm_rate_limited_total{key="user"} 1.0' in await metrics.text()


async def test_anonymous_clients_share_their_address_bucket(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await limited(tmp_path, aiohttp_client)
    statuses = [(await client.get("/api/v1/docs/openapi.json")).status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    # an invalid token is no way out: it falls back to the address
    forged = {"Authorization": "Bearer not-a-token"}
    assert (await client.get(ME, headers=forged)).status == 429


async def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await limited(tmp_path, aiohttp_client)
    statuses = [
        (await client.get(ME, headers={"X-Forwarded-For": f"203.0.113.{n}"})).status
        for n in range(6)
    ]
    assert statuses == [401] * 5 + [429]  # one bucket: the peer's, whatever the header says


async def test_behind_a_trusted_proxy_each_forwarded_client_has_a_bucket(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await limited(tmp_path, aiohttp_client, trusted_proxies=("127.0.0.0/8",))

    async def status(forwarded: str) -> int:
        response = await client.get(ME, headers={"X-Forwarded-For": forwarded})
        return response.status

    assert [await status("198.51.100.1") for _ in range(6)] == [401] * 5 + [429]
    assert await status("198.51.100.2") == 401  # another client: its own bucket
    # the client is the rightmost address that is not a trusted proxy: a spoofed
    # leftmost entry does not buy a new bucket
    assert await status("10.9.9.9, 198.51.100.1") == 429
    assert await status("198.51.100.1, 127.0.0.5") == 429


def test_buckets_refill_at_the_rate_and_idle_ones_are_dropped() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("k", 100.0) for _ in range(3)] == [2.0, 1.0, 0.0]
    assert buckets.take("k", 100.0) == -1.0  # refused: one whole token missing
    assert buckets.take("k", 100.25) == -0.5  # half a token back after 1/4 s at 2/s
    assert buckets.take("k", 100.5) == 0.0  # 0.5 + 0.5 -> one token, taken
    assert buckets.take("other", 100.5) == 2.0
    buckets.prune(102.0)  # "k" and "other" are full again after 1.5 s: dropped
    assert len(buckets) == 0
    assert buckets.take("k", 102.0) == 2.0  # and recreated full
