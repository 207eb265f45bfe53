"""`rhythm sync --watch`: sync whenever the org's WebSocket says something changed.

The socket is only a poke: every event past the cursor triggers an ordinary
sync (push, then pull), so a dropped socket or a missed frame loses nothing;
on a drop the loop syncs and reconnects after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp

from tracker.replica.client import Credentials, SyncClient, SyncError
from tracker.replica.engine import Replica, Report

RECONNECT_SECONDS = 2.0
DEBOUNCE_SECONDS = 0.2


async def watch(
    replica: Replica, show: Callable[[Report], None], rounds: int | None = None
) -> None:
    credentials = Credentials.load(replica.url)
    if credentials is None:
        raise SyncError(401, {"detail": "not logged in"}, "watch")
    done = 0
    async with SyncClient(credentials, replica.org) as client:
        while rounds is None or done < rounds:
            show(await replica.sync(client))
            done += 1
            if rounds is not None and done >= rounds:
                return
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ConnectionError):
                await _wait_for_poke(client, replica)
                continue
            await asyncio.sleep(RECONNECT_SECONDS)


async def _wait_for_poke(client: SyncClient, replica: Replica) -> None:
    """Return when an event past the replica's cursor arrives (or the socket closes)."""
    assert client.session is not None
    if client.access is None:
        await client.refresh()
    url = client.credentials.url.replace("http", "ws", 1) + f"/api/v1/orgs/{client.org}/ws"
    headers = {"Authorization": f"Bearer {client.access}"}
    async with client.session.ws_connect(url, headers=headers, heartbeat=30) as socket:
        since = _cursor_seq(replica)  # events after what we pulled: no gap to miss
        subscribe: dict[str, Any] = {"type": "subscribe", "project": "*"}
        if since is not None:
            subscribe["since"] = since
        await socket.send_json(subscribe)
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            frame: dict[str, Any] = message.json()
            if frame.get("type") in ("event", "resync") and _past_cursor(frame, replica):
                await asyncio.sleep(DEBOUNCE_SECONDS)
                return
    raise ConnectionError("socket closed")


def _cursor_seq(replica: Replica) -> int | None:
    """The seq half of the opaque cursor, only to ask the socket for what came after it."""
    tail = (replica.journal.get("cursor") or "").rpartition(".")[2]
    return int(tail) if tail.isdigit() else None


def _past_cursor(frame: dict[str, Any], replica: Replica) -> bool:
    mine, seq = _cursor_seq(replica), frame.get("seq") or frame.get("head")
    return mine is None or not isinstance(seq, int) or seq > mine
