"""Property test: thousands of random queries at both search endpoints get only 200 or 400.

Hypothesis drives a sync test, so the app runs on an event loop in its own thread
(LoopThread) with the same fixed data set as test_http_search.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tests.test_http_search import build_data_set, search
from tracker.http.app import create_app

_WORDS = [
    "crash", "login", "NEAR", "AND", "OR", "NOT", "status:", "assignee:", "tag:", "sort:",
    "created:", "due:", "is:", "has:", "severity:", '"Story points":', "-", "*", '"', ",",
    ":", "..", ">", "<=", "7d", "2026-01-31", "me", "none", "(", ")", "^", "{", "}", "\u0000",
]  # fmt: skip
QUERIES = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=60),
    st.lists(st.sampled_from(_WORDS), max_size=8).map("".join),
    st.lists(st.sampled_from(_WORDS), max_size=8).map(" ".join),
)


class LoopThread:
    """An event loop on its own thread, so a sync hypothesis test can await the test client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LoopThread, TestClient, World]]:
    runner = LoopThread()

    async def start() -> tuple[TestClient, World]:
        client = TestClient(TestServer(create_app(make_settings(tmp_path / "data"))))
        await client.start_server()
        world = await make_world(Api(client), client)
        await build_data_set(world)
        return client, world

    client, world = runner.run(start())
    try:
        yield runner, client, world
    finally:
        runner.run(client.close())
        runner.stop()


def test_random_queries_only_ever_get_200_or_400(
    live: tuple[LoopThread, TestClient, World],
) -> None:
    runner, _, world = live

    @settings(max_examples=2000, deadline=None, database=None)
    @given(q=QUERIES, org_wide=st.booleans())
    def check(q: str, org_wide: bool) -> None:
        status, body = runner.run(search(world, q, org_wide=org_wide))
        assert status in (200, 400), (q, status, body)

    check()
