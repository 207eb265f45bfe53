"""`rhythm backup` through the running server's backup socket (tracker/http/backup_door.py).

The server copies each database from the connection it owns, in page batches, so
its writers wait at most one batch (docs/operations-data.md, "Eighth session").
`via_server` returns None when no server answers on the socket; the caller then
takes the backup itself from read-only snapshots (the fallback).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import typer

from tracker.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RhythmError,
    ServiceUnavailable,
)
from tracker.services.online_backups import socket_path

MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, with its NUL


_KINDS: dict[int, type[RhythmError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    503: ServiceUnavailable,
}


def _refusal(status: int, detail: str) -> RhythmError:
    """The server's answer as the error kind it was (so the exit code is the same)."""
    return _KINDS.get(status, RhythmError)(detail)


def server_pid(data_dir: Path) -> int | None:
    """The pid in the data dir's lock file, if that process is alive (a hint for the
    message only: testing the flock itself could make a starting server fail)."""
    try:
        pid = int((data_dir / ".rhythm.lock").read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def via_server(
    data_dir: Path, dest: Path, org: str | None, batch_pages: int | None = None
) -> dict[str, Any] | None:
    """Ask the server to take the backup; its last event (`done`), or None when no
    server answers on the socket (said on stderr when one seems to be running)."""
    path = socket_path(data_dir)
    why = None
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        why = f"its socket path is longer than {MAX_SOCKET_PATH} bytes"
    elif not path.exists():
        why = "it has no backup socket"
    else:
        body: dict[str, Any] = {"dest": str(dest), "org": org}
        if batch_pages is not None:
            body["batch_pages"] = batch_pages
        try:
            return asyncio.run(_request(path, body))
        except _NoAnswer as exc:
            why = f"its backup socket did not answer ({exc})"
    pid = server_pid(data_dir)
    if pid is not None:
        typer.echo(
            f"note: a server (pid {pid}) serves {data_dir} but {why}; taking the backup from "
            "read-only snapshots instead (its writers may stall when each snapshot ends)",
            err=True,
        )
    return None


class _NoAnswer(Exception):
    """Nothing listens on the socket (a stale file, a server shutting down)."""


async def _request(path: Path, body: dict[str, Any]) -> dict[str, Any]:
    connector = aiohttp.UnixConnector(path=str(path))
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)  # heartbeats come every second
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        try:
            response = await session.post("http://rhythm/backup", json=body)
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise _NoAnswer(str(exc) or type(exc).__name__) from exc
        async with response:
            if response.status >= 400:
                problem = await response.json(content_type=None)
                raise _refusal(response.status, str(problem.get("detail", problem)))
            last: dict[str, Any] = {}
            try:
                async for raw in response.content:
                    event = json.loads(raw)
                    _show(event)
                    last = event
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise ServiceUnavailable(f"the server stopped answering the backup: {exc}") from exc
    if last.get("event") == "error":
        raise _refusal(int(last.get("status", 500)), str(last.get("detail")))
    if last.get("event") != "done":
        raise ServiceUnavailable("the server ended the backup before it was done")
    return last


def _show(event: dict[str, Any]) -> None:
    """Progress on stderr, for a person watching (not when stderr is a file or pipe)."""
    if not sys.stderr.isatty():
        return
    if event.get("event") == "copying":
        share = 100 * event["copied"] / max(1, event["pages"])
        typer.echo(f"  {event['db']}: {share:.0f} % of {event['pages']:,} pages", err=True)
    elif event.get("event") == "copied":
        typer.echo(
            f"  {event['db']}: copied in {event['copy_s'] + event['seal_s']:.1f} s", err=True
        )
