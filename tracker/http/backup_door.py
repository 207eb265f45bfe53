"""The backup socket: how `rhythm backup` asks the running server to take a backup.

A Unix-domain socket in the data dir (`.rhythm-backup.sock`, mode 0600) served by a
tiny aiohttp app of its own that does one thing: `POST /backup` with
`{"dest": "/abs/path", "org": "slug" | null, "batch_pages": n}` takes a backup
(tracker/services/online_backups.py) and streams one JSON line per event back:
`copying` / `copied` (progress), `heartbeat`, then `done` (with the manifest) or
`error` (status and detail). Refusals before anything is copied are problem+json.

Who may use it: whoever can open the socket, i.e. the server's user (and root),
who can read the data dir anyway; the peer's uid is checked as well where the OS
tells it (SO_PEERCRED). The HTTP API gains no door: this app listens on the socket
only. One backup at a time; a client that disconnects stops its backup (its
`.partial` file is removed, no manifest is written).

The path of a Unix socket is limited to ~107 bytes: a data dir too deep for it
gets no socket (logged), and `rhythm backup` falls back to its own snapshot copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Any

from aiohttp import web

from tracker.errors import BadRequest, Conflict, Forbidden, RhythmError
from tracker.http.problems import problem_response
from tracker.services import online_backups
from tracker.services.runtime import Core

log = logging.getLogger(__name__)

MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, with its NUL
HEARTBEAT_S = 1.0  # a line at least this often: a vanished client is noticed by a write
MAX_REQUEST = 16 * 1024


def socket_fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


def _peer_allowed(request: web.Request) -> bool:
    """The connecting process runs as this server's user or as root (Linux; elsewhere
    the socket's 0600 mode alone decides)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return True
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return True
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid in (os.getuid(), 0)


def _request_of(body: Any) -> tuple[Path, str | None, int]:
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    dest, org = body.get("dest"), body.get("org")
    batch = body.get("batch_pages", online_backups.BATCH_PAGES)
    if not isinstance(dest, str) or not os.path.isabs(dest):
        raise BadRequest("dest must be an absolute path")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in dest):
        raise BadRequest("dest contains control characters")
    if org is not None and not isinstance(org, str):
        raise BadRequest("org must be a slug or null")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise BadRequest("batch_pages must be a positive integer")
    return Path(dest), org, batch


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


class BackupDoor:
    """Serves the backup socket of `core`'s data dir while the server runs."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.path = online_backups.socket_path(core.settings.data_dir)
        self._runner: web.AppRunner | None = None
        self._busy = asyncio.Lock()
        self._jobs: set[asyncio.Task[Any]] = set()

    async def start(self) -> bool:
        """Listen on the socket; False (logged) when its path is too long for one."""
        if not online_backups.available():
            log.info("no backup socket: page copies need CPython's sqlite3 through ctypes")
            return False
        if not socket_fits(self.path):
            log.info("no backup socket: %s is longer than %d bytes", self.path, MAX_SOCKET_PATH)
            return False
        app = web.Application(client_max_size=MAX_REQUEST)
        app.router.add_post("/backup", self._backup)
        # handler_cancellation: a client that disconnects cancels its handler, and with it
        # the backup, even between two progress lines
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=True
        )
        await runner.setup()
        self._remove_stale()
        try:
            await web.UnixSite(runner, str(self.path)).start()
        except OSError as exc:
            log.warning("no backup socket at %s: %s", self.path, exc)
            await runner.cleanup()
            return False
        os.chmod(self.path, 0o600)  # the data dir is 0700 already: no window to speak of
        self._runner = runner
        return True

    def _remove_stale(self) -> None:
        """A socket left by a server that died: this process holds the data-dir lock."""
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()

    async def stop(self) -> None:
        """Stop listening; a backup still running is cancelled (it cleans up after itself)."""
        for job in list(self._jobs):
            job.cancel()
        for job in list(self._jobs):
            with contextlib.suppress(BaseException):
                await job
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _backup(self, request: web.Request) -> web.StreamResponse:
        try:
            if not _peer_allowed(request):
                raise Forbidden("only the server's own user may take a backup")
            try:
                body = await request.json()
            except ValueError as exc:
                raise BadRequest("the body is not JSON") from exc
            dest, org, batch = _request_of(body)
            if self._busy.locked():
                raise Conflict("a backup is already running")
            async with self._busy:
                try:
                    job = await online_backups.plan(self.core, dest, org, batch)
                except OSError as exc:  # the server's user, not the CLI's, writes the backup
                    reason = exc.strerror or str(exc)
                    raise BadRequest(f"the server cannot write to {dest}: {reason}") from exc
                return await self._stream(request, job)
        except RhythmError as error:
            return problem_response(error, None)

    async def _stream(self, request: web.Request, job: online_backups.Plan) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        pending: list[dict[str, Any]] = []
        wake = asyncio.Event()

        def progress(event: dict[str, Any]) -> None:
            pending.append(event)
            wake.set()

        task = asyncio.create_task(online_backups.run(self.core, job, progress))
        self._jobs.add(task)
        try:
            while True:
                wake.clear()
                events, pending[:] = list(pending), []
                for event in events:
                    await response.write(_line(event))
                if task.done():
                    break
                waiter = asyncio.create_task(wake.wait())
                try:
                    done, _ = await asyncio.wait(
                        {waiter, task}, timeout=HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    waiter.cancel()
                if not done:
                    await response.write(_line({"event": "heartbeat"}))
            await response.write(_line(_outcome(task)))
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            # the client went away (or the server stops): stop the backup, cleanly
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        finally:
            self._jobs.discard(task)
        return response


def _outcome(task: asyncio.Task[Any]) -> dict[str, Any]:
    """The last line: the manifest, or what failed (never a traceback)."""
    error = task.exception()
    if error is None:
        report = task.result()
        return {"event": "done", "manifest": report.manifest, "seconds": report.seconds}
    if isinstance(error, RhythmError):
        return {"event": "error", "status": error.status, "detail": error.detail}
    log.error("backup failed", exc_info=error)
    return {"event": "error", "status": 500, "detail": f"backup failed: {error}"}
