"""The script worker process: receives jobs over a pipe, runs each in a fresh sandbox.

Messages are JSON bytes (never pickles: the parent decodes only plain data from
a process that runs hostile code). Parent -> worker: a job, a read reply, or
`null` to stop. Worker -> parent: `{"read": kind, "arg", "limit"}` while a
job needs data, then `{"result": {...}}`.
"""

from __future__ import annotations

import contextlib
import json
import resource
from multiprocessing.connection import Connection
from typing import Any

from tracker.scripting.sandbox import run_job

#: The OS-level backstop behind lupa's allocator cap (Lua memory is capped per run).
ADDRESS_SPACE_BYTES = 1024 * 1024 * 1024


def serve(conn: Connection, address_space: int = ADDRESS_SPACE_BYTES) -> None:
    """The worker's main loop (the multiprocessing target)."""
    with contextlib.suppress(ValueError, OSError):  # a lower hard limit is already set
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    while True:
        try:
            job = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send_bytes(_encode({"result": run_job(job, _reader(conn))}))


def _reader(conn: Connection) -> Any:
    def read(kind: str, arg: str | None, limit: int | None) -> Any:
        conn.send_bytes(_encode({"read": kind, "arg": arg, "limit": limit}))
        reply = json.loads(conn.recv_bytes())
        if not reply.get("ok"):
            raise LookupError(str(reply.get("error") or "read failed"))
        return reply.get("value")

    return read


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode("utf-8", "replace")
