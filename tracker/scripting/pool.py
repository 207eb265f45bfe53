"""A small pool of killable Lua worker processes: the wall-clock backstop.

The sandbox's hook stops Lua code that loops, but not C code that does: a
pattern like `("a"):rep(1e5):find(".-.-b")` backtracks inside C for minutes.
So every job runs in a worker process, and the thread driving it kills the
process with SIGKILL when the job's wall-clock deadline passes; the slot
spawns a fresh worker on its next use. A killed run changes nothing (its
effects were never sent).

`run` is synchronous and thread-safe: it blocks the calling thread (never the
event loop; `run_async` hands it to the pool's own threads) while it feeds the
job, answers the worker's read requests with `answer`, and waits. Workers are
started lazily in the driving thread from a `forkserver` context that preloads
the worker module (lupa imported once; a respawn is a fork, not a new
interpreter).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

#: (read request) -> reply value; raising sends the error text to the script.
Answer = Callable[[dict[str, Any]], Any]

#: Preloaded by the forkserver, imported here only when a worker starts (lupa is not
#: loaded by CLI commands that never run a script).
WORKER_MODULE = "tracker.scripting.worker"
_context: Any = None
_context_lock = threading.Lock()


def _mp_context() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload([WORKER_MODULE])
            _context = ctx
        return _context


@dataclass
class _Worker:
    process: Any
    conn: Connection

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.join(2)
        with contextlib.suppress(Exception):
            self.conn.close()


def timeout_result(seconds: float) -> dict[str, Any]:
    return failed("timeout", f"script exceeded its time budget ({seconds * 1000:.0f} ms)")


def failed(status: str, message: str) -> dict[str, Any]:
    return {
        "status": status,
        "error": message,
        "line": None,
        "logs": [],
        "effects": [],
        "triggers": [],
    }


class WorkerPool:
    """`size` worker processes, each running one job at a time."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._slots: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(size):
            self._slots.put(None)
        self._threads = ThreadPoolExecutor(max_workers=size + 1, thread_name_prefix="lua")
        self._closed = False
        self.kills = 0  # workers killed at a deadline (tests, metrics)

    def run(
        self, job: dict[str, Any], answer: Answer, deadline_s: float, *, wait_s: float = 30.0
    ) -> dict[str, Any]:
        """Run `job` on a free worker; kill it at `deadline_s` of wall-clock time."""
        if self._closed:
            return failed("error", "the script runner is shut down")
        try:
            slot = self._slots.get(timeout=wait_s)
        except queue.Empty:
            return failed("skipped", "overloaded: no script worker became free")
        try:
            if slot is None or not slot.alive():
                slot = self._spawn()
            result, keep = self._drive(slot, job, answer, deadline_s)
            if not keep:
                slot.kill()
                slot = None
            return result
        finally:
            if self._closed and slot is not None:
                slot.kill()
                slot = None
            self._slots.put(slot)

    async def run_async(
        self, job: dict[str, Any], answer: Answer, deadline_s: float
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self.run, job, answer, deadline_s)

    def _spawn(self) -> _Worker:
        from tracker.scripting import worker as worker_module  # lupa loads on first use only

        ctx = _mp_context()
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker_module.serve, args=(child,), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _drive(
        self, slot: _Worker, job: dict[str, Any], answer: Answer, deadline_s: float
    ) -> tuple[dict[str, Any], bool]:
        """(result, keep the worker). Read requests are answered as they come."""
        end = time.monotonic() + deadline_s
        try:
            slot.conn.send_bytes(json.dumps(job).encode())
            while True:
                remaining = end - time.monotonic()
                if remaining <= 0 or not slot.conn.poll(remaining):
                    self.kills += 1
                    return timeout_result(deadline_s), False
                message = json.loads(slot.conn.recv_bytes())
                if "result" in message:
                    return message["result"], True
                slot.conn.send_bytes(json.dumps(self._answer(answer, message)).encode())
        except (EOFError, OSError, ValueError):
            return failed("memory", "the script's worker died (out of memory?)"), False

    @staticmethod
    def _answer(answer: Answer, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"ok": True, "value": answer(message)}
        except Exception as exc:
            return {"ok": False, "error": str(exc)}

    def close(self) -> None:
        """Stop every worker (blocking; call off the event loop)."""
        self._closed = True
        while True:
            try:
                slot = self._slots.get_nowait()
            except queue.Empty:
                break
            if slot is not None:
                with contextlib.suppress(Exception):
                    slot.conn.send_bytes(b"null")
                slot.kill()
        self._threads.shutdown(wait=False, cancel_futures=True)
