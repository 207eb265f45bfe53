"""The auth-abuse items of the adversarial checklist that had no test yet:
brute force from many addresses, login enumeration by timing, and a login flood.

Timing assertions are ratios of medians over interleaved tries or generous
bounds, so a loaded CI box slows both sides together instead of flaking.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tracker.http.app import create_app


async def test_brute_force_from_twenty_addresses_is_throttled_per_account(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    """20 wrong passwords from 127.0.0.1..20: the account is throttled after 5, whatever
    the address, and even the right password waits for the window."""
    client = await aiohttp_client(create_app(make_settings(tmp_path / "d")))
    user = await Api(client).user()
    url = str(client.make_url("/api/v1/auth/login"))
    statuses = []
    for n in range(1, 21):
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.0.{n}", 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            body = {"email": user["email"], "password": f"wrong {n}"}
            async with session.post(url, json=body) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.99", 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        right = {"email": user["email"], "password": user["password"]}
        async with session.post(url, json=right) as response:
            assert response.status == 429


async def test_unknown_email_and_wrong_password_take_the_same_time(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    settings = make_settings(tmp_path / "d", login_failures_per_email=1000,
                             login_attempts_per_address=1000)  # fmt: skip
    client = await aiohttp_client(create_app(settings))
    user = await Api(client).user()
    known, unknown = [], []
    for n in range(30):  # interleaved
        for email, times in ((user["email"], known), (f"ghost{n}@example.com", unknown)):
            began = time.perf_counter()
            response = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": "not it at all"}
            )
            times.append(time.perf_counter() - began)
            assert response.status == 401
    ratio = statistics.median(unknown) / statistics.median(known)
    # Without the dummy verify an unknown email answers ~10x faster; the checklist's
    # +-20 % holds on a quiet box; the bound is looser (still 5x tighter than the
    # fault) for a loaded CI machine.
    assert 0.5 < ratio < 2.0, ratio


async def test_login_flood_answers_cleanly_and_health_stays_fast(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    settings = make_settings(
        tmp_path / "d",
        argon2_concurrency=1,
        login_attempts_per_address=1000,
        login_failures_per_email=1000,
        argon2_memory_kib=16384,
    )
    client: TestClient = await aiohttp_client(create_app(settings))
    user = await Api(client).user()
    body = {"email": user["email"], "password": user["password"]}
    flood = [asyncio.create_task(client.post("/api/v1/auth/login", json=body))
             for _ in range(50)]  # fmt: skip
    latencies = []
    while not all(task.done() for task in flood):
        began = time.perf_counter()
        assert (await client.get("/api/v1/health/live")).status == 200
        latencies.append(time.perf_counter() - began)
        await asyncio.sleep(0.005)
    statuses = [(await task).status for task in flood]
    assert set(statuses) <= {200, 429, 503}, statuses
    assert 200 in statuses and 503 in statuses  # bounded admission, not a queue of 50
    latencies.sort()
    assert latencies[int(len(latencies) * 0.99) - 1] < 0.25, latencies[-5:]
