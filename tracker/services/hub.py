"""The WebSocket hub: per-org connections, subscriptions, catch-up and live fan-out.

Transport-free: the HTTP door (tracker/http/ws.py) owns the sockets and drains
each `Connection`'s queue; the hub only decides what goes into which queue.

- Live: the hub subscribes to the event bus. A batch of an org with open
  connections is queued on that org's pump, which renders queued batches ONCE
  with `event_objects.render` and appends the same `Event.frame` bytes to every
  eligible connection's bounded queue. Putting a frame never awaits, so a slow
  socket can never hold up the publisher (a writer's request); a queue over its
  frame or byte bound closes its socket 4008 (the client reconnects with `since`).
- Access: a batch touching `ACCESS_ENTITIES` makes the pump re-read, before it
  sends anything more, what each connected person may see; a subscription that
  lost its project gets `unsubscribed` (access_revoked / project_deleted) and
  nothing of that project follows; a person no longer in the org is closed 4404.
- Catch-up (`subscribe` with `since`): the subscription is registered first and
  buffers live events, then the change feed is read (as that person) up to the
  head, then the buffer is drained dropping seq <= last sent. Every batch
  committed meanwhile is either in the read or in the buffer, so the seam has no
  gap and no duplicate (docs/realtime.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tracker.domain.changes import ACCESS_ENTITIES, ChangeBatch, Entity, Op
from tracker.services import feed
from tracker.services.access import OrgAccess, read, resolve_project
from tracker.services.event_objects import Event, render
from tracker.services.runtime import Core
from tracker.storage import changes as change_sql
from tracker.storage import summaries as summary_sql

log = logging.getLogger(__name__)

#: Close codes (SPEC §7): 4xxx always carry a reason.
GOING_AWAY = 1001
SLOW_CONSUMER = 4008
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
NOT_FOUND = 4404
RATE_LIMITED = 4429

#: Batches rendered together by one pump step (one tenant read, one system read).
RENDER_CHUNK = 256
#: Change rows read per catch-up page.
CATCHUP_PAGE = 1000
#: How long `stop()` waits for sockets to finish closing (seconds).
STOP_GRACE = 10.0

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def frame(obj: dict[str, Any]) -> bytes:
    """A server frame (not an event: those are serialized once by event_objects)."""
    return _encode(obj).encode()


@dataclass(frozen=True)
class Limits:
    """Per-connection queue bounds (frames, bytes) and the catch-up limit."""

    queue_frames: int = 1000
    queue_bytes: int = 8 * 1024 * 1024
    catchup_max: int = 10_000


@dataclass
class Subscription:
    """One `subscribe`: a project (or "*"), the last seq sent, a buffer while catching up."""

    project_id: str | None  # None: every project the person can see
    label: str  # what the client named: "WEB" or "*"
    last_seq: int = 0
    buffer: list[Event] | None = field(default_factory=list)  # None once live


class Connection:
    """One socket's state in the hub: who, which org, its subscriptions and its queue."""

    def __init__(self, hub: Hub, access: OrgAccess, limits: Limits) -> None:
        assert access.user_id is not None
        self.hub = hub
        self.access = access
        self.user_id: str = access.user_id
        self.org = access.org
        self.limits = limits
        self.subs: dict[str, Subscription] = {}  # project id or "*" -> subscription
        self.visible: frozenset[str] = frozenset()
        self.keys: dict[str, str] = {}  # visible project id -> key
        self.tasks: dict[str, asyncio.Task[None]] = {}  # label -> running subscribe
        self.frames: deque[bytes] = deque()
        self.queued_bytes = 0
        self.close_reason: tuple[int, str, bool] | None = None  # (code, reason, flush)
        self.on_close: Callable[[], None] = lambda: None  # set by the door
        #: The door's synchronous write to an idle socket (None: always queue). Used only
        #: while the queue is empty, so frames never overtake each other.
        self.direct: Callable[[bytes], bool] | None = None
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self.done = asyncio.get_running_loop().create_future()  # resolved by the door

    # -- the queue ---------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Queue a frame without ever waiting; over the bounds the socket is closed 4008."""
        if self.close_reason is not None:
            return False
        if not self.frames and self.direct is not None and self.direct(data):
            return True
        if self.frames and (
            len(self.frames) >= self.limits.queue_frames
            or self.queued_bytes + len(data) > self.limits.queue_bytes
        ):
            self.close(SLOW_CONSUMER, "too slow: queue full, reconnect with since", flush=False)
            return False
        self.frames.append(data)
        self.queued_bytes += len(data)
        self._wake.set()
        return True

    async def push(self, data: bytes) -> bool:
        """Queue a frame, waiting for room first (catch-up pages: backpressure, not 4008).
        Past half the bounds it waits until the writer has drained the queue to a quarter,
        so a fast replay does not switch tasks once per frame."""
        limits = self.limits
        if self.frames and (
            len(self.frames) >= max(limits.queue_frames // 2, 1)
            or self.queued_bytes + len(data) > limits.queue_bytes // 2
        ):
            self._room.clear()
            while self.close_reason is None and not self._room.is_set():
                await self._room.wait()
        return self.send(data)

    async def next_frame(self) -> bytes | None:
        """The writer's side: the next frame to send, or None when the socket must close."""
        while not self.frames:
            if self.close_reason is not None:
                return None
            self._wake.clear()
            await self._wake.wait()
        data = self.frames.popleft()
        self.queued_bytes -= len(data)
        if (
            len(self.frames) <= self.limits.queue_frames // 4
            and self.queued_bytes <= self.limits.queue_bytes // 4
        ):
            self._room.set()
        return data

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Ask the door to close the socket (after the queued frames when `flush`)."""
        if self.close_reason is not None:
            return
        if not flush:
            self.frames.clear()
            self.queued_bytes = 0
        self.close_reason = (code, reason, flush)
        for task in self.tasks.values():
            task.cancel()
        self._wake.set()
        self._room.set()
        self.hub.forget(self)
        self.on_close()

    # -- routing -----------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Route one live event: to the subscription that wants it, once, in order."""
        if event.project_id not in self.visible:
            return
        sub = self.subs.get(event.project_id) or self.subs.get("*")
        if sub is None:
            return
        if sub.buffer is not None:  # catching up: keep it for the seam
            sub.buffer.append(event)
            if len(sub.buffer) > self.limits.queue_frames:
                self.close(SLOW_CONSUMER, "too slow: catch-up buffer full", flush=False)
        elif event.seq > sub.last_seq:
            sub.last_seq = event.seq
            self.send(event.frame)

    def see(self, visible: dict[str, str]) -> dict[str, str]:
        """Adopt a new visibility ({project id: key}); returns the projects that left it."""
        lost = {pid: self.keys[pid] for pid in self.visible - visible.keys()}
        self.visible = frozenset(visible)
        self.keys = visible
        return lost


@dataclass
class _Room:
    """An org's connections and its queue of published batches (one pump at a time)."""

    org_id: str
    connections: set[Connection] = field(default_factory=set)
    pending: deque[ChangeBatch] = field(default_factory=deque)
    pump: asyncio.Task[None] | None = None


class Hub:
    """See the module docstring. Implements the background-service protocol."""

    name = "websocket-hub"

    def __init__(self, core: Core, limits: Limits | None = None) -> None:
        self.core = core
        settings = core.settings
        self.limits = limits or Limits(
            settings.ws_queue_frames, settings.ws_queue_bytes, settings.ws_catchup_max
        )
        self.max_per_user = settings.ws_max_per_user
        self._rooms: dict[str, _Room] = {}
        self._per_user: Counter[str] = Counter()
        self._all: set[Connection] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self.closing = False

    # -- service -----------------------------------------------------------------

    async def start(self) -> None:
        self.closing = False
        self._unsubscribe = self.core.events.subscribe(self._on_batch)

    async def shutdown(self, reason: str = "server shutting down") -> None:
        """Close every socket with 1001 and wait (bounded) until they are closed."""
        self.closing = True
        conns = list(self._all)
        for conn in conns:
            conn.close(GOING_AWAY, reason, flush=False)
        if conns:
            await asyncio.wait([c.done for c in conns], timeout=STOP_GRACE)

    async def stop(self) -> None:
        await self.shutdown()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for room in list(self._rooms.values()):
            if room.pump is not None:
                room.pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await room.pump
        self._rooms.clear()

    # -- connections ---------------------------------------------------------------

    def connections_of(self, user_id: str) -> int:
        return self._per_user[user_id]

    @property
    def open_connections(self) -> int:
        return len(self._all)

    async def connect(self, access: OrgAccess) -> tuple[Connection, int]:
        """Register a socket of a person in an org; returns it and the org's head."""
        conn = Connection(self, access, self.limits)
        self._all.add(conn)
        self._per_user[conn.user_id] += 1
        self._rooms.setdefault(access.org.id, _Room(access.org.id)).connections.add(conn)
        try:
            head, visible = await self._visibility(access)
        except BaseException:
            self.forget(conn)
            raise
        conn.see(visible or {})
        return conn, head

    def forget(self, conn: Connection) -> None:
        if conn not in self._all:
            return
        self._all.discard(conn)
        self._per_user[conn.user_id] -= 1
        if self._per_user[conn.user_id] <= 0:
            del self._per_user[conn.user_id]
        room = self._rooms.get(conn.org.id)
        if room is not None:
            room.connections.discard(conn)
            if not room.connections and not room.pending and room.pump is None:
                del self._rooms[room.org_id]

    async def _visibility(self, access: OrgAccess) -> tuple[int, dict[str, str] | None]:
        """(head, {visible project id: key}), or None visibility when not an org member."""
        user_id = access.user_id
        assert user_id is not None
        role = await feed.org_role_of(self.core, access.org.id, user_id)

        def see(conn: sqlite3.Connection) -> tuple[int, dict[str, str] | None]:
            head = change_sql.head(conn)
            if role is None:
                return head, None
            seen = feed.visibility_in(conn, user_id, role)
            ids = sorted(seen.projects or ())
            return head, summary_sql.project_keys(conn, ids)

        return await read(self.core, access, see)

    # -- subscriptions ---------------------------------------------------------------

    def subscribe(self, conn: Connection, label: str, since: int | None) -> None:
        """Start a subscription (replacing one of the same label); runs as its own task."""
        label = label if label == "*" else label.upper()
        previous = conn.tasks.pop(label, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._subscribe(conn, label, since))
        conn.tasks[label] = task
        task.add_done_callback(lambda t: conn.tasks.pop(label, None) if conn.tasks.get(label) is t
                               else None)  # fmt: skip

    def unsubscribe(self, conn: Connection, label: str) -> None:
        label = label if label == "*" else label.upper()
        task = conn.tasks.pop(label, None)
        if task is not None:
            task.cancel()
        key = next((k for k, s in conn.subs.items() if s.label == label), None)
        if key is not None:
            del conn.subs[key]
        conn.send(frame({"type": "unsubscribed", "project": label, "reason": "requested"}))

    async def _subscribe(self, conn: Connection, label: str, since: int | None) -> None:
        if label == "*":
            project_id = None
        else:
            try:
                project = await resolve_project(self.core, conn.org, label, conn.user_id)
            except Exception:
                project = None
            if project is None or project.role is None:
                conn.send(error("not_found", f"project {label} not found"))
                return
            project_id = project.id
        mixed = any(k != "*" for k in conn.subs) if label == "*" else "*" in conn.subs
        if mixed:
            conn.send(error("bad_frame", "'*' and single projects cannot be mixed on one socket"))
            return
        key = project_id or "*"
        sub = Subscription(project_id, label)
        conn.subs[key] = sub  # live events buffer from here on
        head = await feed.head(self.core, conn.org.id)
        if since is not None and (since > head or head - since > self.limits.catchup_max):
            del conn.subs[key]
            reason = "too_far_behind" if since <= head else "since_ahead_of_head"
            conn.send(frame({"type": "resync", "project": label, "reason": reason, "head": head}))
            return
        conn.send(frame({"type": "subscribed", "project": label, "head": head}))
        if since is None:
            sub.last_seq = head
        else:
            sub.last_seq = since
            await self._catch_up(conn, sub)
        self._go_live(conn, sub)

    async def _catch_up(self, conn: Connection, sub: Subscription) -> None:
        """Replay the feed after `sub.last_seq` as this person sees it, up to the head.

        Pipelined: page k+1 is read and rendered while page k's frames go out, so the
        tenant read overlaps the socket instead of waiting for it."""
        projects = None if sub.project_id is None else [sub.project_id]

        async def page_at(seq: int) -> tuple[feed.FeedPage, list[Event]]:
            page = await feed.since(
                self.core, conn.org.id, seq, user_id=conn.user_id, projects=projects,
                limit=CATCHUP_PAGE,
            )  # fmt: skip
            return page, await render(self.core, conn.org.id, page.batches)

        ahead = asyncio.create_task(page_at(sub.last_seq))
        try:
            while True:
                page, events = await ahead
                if not page.at_head:
                    ahead = asyncio.create_task(page_at(page.next_seq))
                for event in events:
                    if event.seq <= sub.last_seq or event.project_id not in conn.visible:
                        continue
                    if not await conn.push(event.frame):
                        return
                    sub.last_seq = event.seq
                sub.last_seq = max(sub.last_seq, page.next_seq)
                if page.at_head:
                    return
        finally:
            if not ahead.done():
                ahead.cancel()

    def _go_live(self, conn: Connection, sub: Subscription) -> None:
        """Drain what arrived live during the catch-up (no await: nothing slips between)."""
        buffered, sub.buffer = sub.buffer or [], None
        if conn.subs.get(sub.project_id or "*") is not sub:
            return  # replaced or revoked meanwhile
        for event in buffered:
            if event.seq > sub.last_seq and event.project_id in conn.visible:
                sub.last_seq = event.seq
                conn.send(event.frame)

    # -- live --------------------------------------------------------------------------

    def _on_batch(self, batch: ChangeBatch) -> None:
        """Event-bus subscriber: must not block; queues the batch on its org's pump."""
        room = self._rooms.get(batch.org_id)
        if room is None or not room.connections:
            return
        room.pending.append(batch)
        if room.pump is None:
            room.pump = asyncio.create_task(self._pump(room), name=f"ws-pump-{room.org_id}")

    async def _pump(self, room: _Room) -> None:
        try:
            while room.pending and room.connections:
                first = room.pending[0]
                if _touches_access(first):
                    room.pending.popleft()
                    run = [first]
                    await self._safely(self._recheck(room, first))
                else:
                    run = []
                    while room.pending and len(run) < RENDER_CHUNK:
                        if _touches_access(room.pending[0]):
                            break
                        run.append(room.pending.popleft())
                events = await self._safely(render(self.core, room.org_id, run)) or []
                for event in events:
                    for conn in tuple(room.connections):
                        conn.deliver(event)
        finally:
            room.pump = None
            if not room.connections or self.closing:
                room.pending.clear()
                if self._rooms.get(room.org_id) is room and not room.connections:
                    del self._rooms[room.org_id]
            elif room.pending:  # published while this step was finishing
                room.pump = asyncio.create_task(self._pump(room))

    async def _safely(self, work: Any) -> Any:
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("websocket hub: a pump step failed")
            return None

    async def _recheck(self, room: _Room, batch: ChangeBatch) -> None:
        """Re-read what each connected person may see after an access-changing batch."""
        if any(c.entity == Entity.ORG and c.op == Op.DELETE for c in batch.changes):
            for conn in tuple(room.connections):
                conn.close(NOT_FOUND, "organization not found")
            return
        deleted = {
            c.entity_id for c in batch.changes if c.entity == Entity.PROJECT and c.op == Op.DELETE
        }
        people = {conn.user_id: conn.access for conn in room.connections}
        for user_id, access in people.items():
            _, visible = await self._visibility(access)
            for conn in [c for c in room.connections if c.user_id == user_id]:
                self._apply(conn, visible, deleted)

    def _apply(self, conn: Connection, visible: dict[str, str] | None, deleted: set[str]) -> None:
        lost = conn.see(visible or {})
        for project_id, key in lost.items():
            reason = "project_deleted" if project_id in deleted else "access_revoked"
            sub = conn.subs.get(project_id)
            if sub is not None:
                del conn.subs[project_id]
                task = conn.tasks.pop(sub.label, None)
                if task is not None:
                    task.cancel()
            elif "*" not in conn.subs:
                continue
            conn.send(frame({"type": "unsubscribed", "project": key, "reason": reason}))
        if visible is None:
            conn.close(NOT_FOUND, "organization not found")


def _touches_access(batch: ChangeBatch) -> bool:
    return any(change.entity in ACCESS_ENTITIES for change in batch.changes)


def error(code: str, detail: str) -> bytes:
    """An `error` frame (the socket stays open)."""
    return frame({"type": "error", "code": code, "detail": detail})


def labels(conns: Iterable[Connection]) -> list[list[str]]:
    """Each connection's subscription labels (tests, debugging)."""
    return [sorted(s.label for s in c.subs.values()) for c in conns]
