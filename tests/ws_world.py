"""WebSocket helpers for the real-time tests: a thin reader over aiohttp's client socket."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient

from tests.issues_world import World


@dataclass
class Socket:
    ws: ClientWebSocketResponse
    hello: dict[str, Any] | None = None

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def frame(self, timeout: float = 5.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type is WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        return json.loads(msg.data)  # type: ignore[no-any-return]

    async def next(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame, which must be of `kind`."""
        got = await self.frame(timeout)
        assert got["type"] == kind, got
        return got

    async def events(self, until_seq: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Event frames until one with seq >= until_seq (other frames fail the test)."""
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while not found or found[-1]["seq"] < until_seq:
                found.append(await self.next("event", timeout))
        return found

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Read (and drop) frames until the close; returns (code, reason)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    return self.ws.close_code, str(msg.extra or "")
                if msg.type is WSMsgType.ERROR:
                    return self.ws.close_code, str(msg.data)

    async def silent(self, seconds: float = 0.3) -> None:
        """Nothing arrives for `seconds`."""
        try:
            msg = await self.ws.receive(timeout=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {msg.type} {msg.data!r}")


def ws_path(world: World, slug: str | None = None) -> str:
    return f"/api/v1/orgs/{slug or world.org['slug']}/ws"


async def connect(
    client: TestClient, path: str, who: dict[str, Any] | None, **kwargs: Any
) -> Socket:
    """Open a socket authenticated by header (no hello read)."""
    headers = dict(kwargs.pop("headers", {}))
    if who is not None:
        headers.update(who["headers"])
    ws = await client.ws_connect(path, headers=headers, **kwargs)
    return Socket(ws)


async def joined(
    world: World, who: dict[str, Any], project: str | None = "WEB", since: int | None = None
) -> Socket:
    """A socket of `who` that got its hello and, when `project` is given, is subscribed."""
    sock = await connect(world.client, ws_path(world), who)
    sock.hello = await sock.next("hello")
    if project is not None:
        frame: dict[str, Any] = {"type": "subscribe", "project": project}
        if since is not None:
            frame["since"] = since
        await sock.send(**frame)
        await sock.next("subscribed")
    return sock


async def head(world: World) -> int:
    rows = await world.rows("SELECT coalesce(max(seq), 0) AS head FROM changes")
    return int(rows[0]["head"])


async def expected_events(world: World, project_id: str, after: int) -> list[int]:
    """Event seqs the change log implies for a project after `after`: the last seq of
    each (batch, issue) group, or of each (batch, entity) for changes of no issue."""
    last: dict[tuple[str, str], int] = {}
    for row in await world.changes():
        if row["seq"] <= after or row["project"] != project_id:
            continue
        meta = row["meta"] or {}
        issue = row["entity_id"] if row["entity"] == "issue" else meta.get("issue")
        key = (row["batch"], issue or f"{row['entity']}:{row['entity_id']}")
        last[key] = row["seq"]
    return sorted(last.values())
