"""Webhook delivery: a change-feed consumer that fills the outbox, and a sender that empties it.

    service = WebhookService(core)          # one background service
    await service.start() ... await service.stop()

1. The consumer ("webhooks", a FeedConsumer) renders each page's events once
   and writes one pending delivery row per matching (event, hook), advancing
   its cursor in the SAME transaction: a crash before that commit re-reads the
   page, after it the rows exist. Hooks receive events after the change that
   created them (`since_seq`).
2. The sender reads due deliveries from SQLite — never more than `window` rows
   per hook in memory, so a dead receiver's backlog stays on disk — and POSTs
   them signed. A hook's deliveries go out one at a time in seq order (head of
   line: a later event never overtakes a failing earlier one); different hooks
   run in parallel, bounded overall and per host, so a slow receiver only slows
   itself. Each outcome and its attempt row are written in one transaction.
   Failures are retried after `schedule(attempt)` seconds (exponential backoff
   with full jitter, 10 s .. 1 h by default) until `give_up_at` (24 h), then
   `failed`; a 410 disables the hook; an address the guard refuses is `blocked`.

At least once: a crash between a POST and its outcome's commit sends it again,
with the same `X-Rhythm-Delivery` id, so a receiver can drop the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yarl import URL

from tracker.domain.ids import new_ids
from tracker.errors import NotFound
from tracker.outbound.webhooks import Outbound, Outcome, headers_json, signed_headers
from tracker.services import event_objects, feed
from tracker.services.access import read_org
from tracker.services.changes import UnitOfWork, mutate_org
from tracker.services.counters import WEBHOOK_DELIVERIES
from tracker.services.feed_consumer import FeedConsumer
from tracker.services.runtime import Core
from tracker.services.webhook_gates import Gate
from tracker.services.webhook_outcomes import SYSTEM, OutcomeWriter
from tracker.storage import webhooks as hook_sql

log = logging.getLogger(__name__)

#: The consumer's cursor name in `consumer_cursors`.
CONSUMER = "webhooks"
Schedule = Callable[[int], float]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter above a floor: attempt n waits a random time
    in [base, min(cap, base * 2**n)] — 10-20 s after the first failure, up to 1 h."""

    base: float = 10.0
    cap: float = 3600.0

    def __call__(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(attempt, 32))
        return self.base + random.random() * max(0.0, ceiling - self.base)


# --- the consumer: events -> pending deliveries ------------------------------------------


#: How long the consumer lets batches gather before reading them (seconds): under a
#: stream of writes one page then carries many batches, so rendering, the outbox
#: insert and the cursor update are paid per page rather than per API write.
GATHER_SECONDS = 0.05


class _HookConsumer(FeedConsumer):
    """A FeedConsumer that is only poked for orgs that may have hooks (writes in other
    orgs cost it nothing), and that lets batches gather for GATHER_SECONDS first."""

    def __init__(self, core: Core, orgs: set[str], handle: Any) -> None:
        super().__init__(core, CONSUMER, handle, resume=self._marked)
        self.orgs = orgs
        self._gathering: set[str] = set()

    async def _marked(self) -> list[str]:
        return sorted(self.orgs)

    def _on_batch(self, batch: Any) -> None:
        org_id = batch.org_id
        if org_id in self.orgs and org_id not in self._gathering:
            self._gathering.add(org_id)
            asyncio.get_running_loop().call_later(GATHER_SECONDS, self._gathered, org_id)

    def _gathered(self, org_id: str) -> None:
        self._gathering.discard(org_id)
        self.poke(org_id)

    async def idle(self) -> None:
        while self._gathering:
            await asyncio.sleep(0.01)
        await super().idle()


@functools.lru_cache(maxsize=4096)
def _host(url: str) -> str:
    return URL(url).host or ""


def _matches(hook: dict[str, Any], event: event_objects.Event) -> bool:
    return (
        hook["project_id"] == event.project_id
        and event.seq > hook["since_seq"]
        and ("*" in hook["events"] or event.name in hook["events"])
    )


# --- the service ----------------------------------------------------------------------------


class WebhookService:
    """The consumer and the sender as one background service (name, start, stop)."""

    name = "webhooks"

    def __init__(
        self,
        core: Core,
        *,
        outbound: Outbound | None = None,
        schedule: Schedule | None = None,
        give_up_after: float | None = None,
        window: int = 100,
    ) -> None:
        settings = core.settings
        self.core = core
        self.outbound = outbound or Outbound(
            allow_private=settings.webhook_allow_private,
            timeout=settings.webhook_timeout_seconds,
            connections=settings.webhook_concurrency,
        )
        self.schedule: Schedule = schedule or Backoff(
            settings.webhook_retry_base_seconds, settings.webhook_retry_cap_seconds
        )
        self.give_up_after = (
            settings.webhook_give_up_seconds if give_up_after is None else give_up_after
        )
        self.window = window
        self.orgs: set[str] = set()
        self.consumer = _HookConsumer(core, self.orgs, self._handle)
        self._slots = Gate(settings.webhook_concurrency)
        self._host_limit = settings.webhook_host_concurrency
        self._hosts: dict[str, Gate] = {}
        self._due: dict[str, float] = {}  # org -> when its next head is due (Unix seconds)
        self._workers: dict[tuple[str, str], asyncio.Task[bool]] = {}
        self._writers: dict[str, OutcomeWriter] = {}  # org -> its outcome writer
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # lifecycle

    async def start(self) -> None:
        marked = await asyncio.to_thread(hook_sql.marked_orgs, self.core.settings.data_dir)
        self.orgs.update(marked)
        await self.consumer.start()
        for org_id in marked:
            self.wake(org_id)
        self._task = asyncio.create_task(self._run(), name="webhook-sender")

    @property
    def started(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        await self.consumer.stop()
        tasks = [t for t in (self._task, *self._workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.outbound.close()

    def watch(self, org_id: str) -> None:
        """Start serving an org (its first hook was created)."""
        self.orgs.add(org_id)

    def wake(self, org_id: str, at: float = 0.0) -> None:
        """Look at an org's pending deliveries at `at` (Unix seconds; 0 = now)."""
        current = self._due.get(org_id)
        if current is None or at < current:
            self._due[org_id] = at
            self._wake.set()

    async def idle(self) -> None:
        """Wait until nothing is due now and no delivery is in flight (tests, benchmarks)."""
        while True:
            await self.consumer.idle()
            now = time.time()
            if not self._workers and all(t > now for t in self._due.values()):
                return
            await asyncio.sleep(0.01)

    # consumer side

    async def _handle(self, org_id: str, page: feed.FeedPage) -> None:
        hooks = await read_org(self.core, org_id, hook_sql.enabled_hooks)
        projects = {h["project_id"] for h in hooks}
        wanted = [b for b in page.batches if b.projects & projects]
        events = await event_objects.render(self.core, org_id, wanted) if wanted else []
        now = time.time()
        give_up_at = now + self.give_up_after

        def work(uow: UnitOfWork) -> int:
            current = hook_sql.enabled_hooks(uow.conn)  # re-read: a hook may have gone
            pairs = [(e, h["id"]) for e in events for h in current if _matches(h, e)]
            ids = new_ids(len(pairs))  # one entropy read for the page, not one per row
            rows = [
                (delivery_id, hook_id, event.seq, event.name, event.body, uow.at, give_up_at,
                 now)
                for delivery_id, (event, hook_id) in zip(ids, pairs, strict=True)
            ]  # fmt: skip
            hook_sql.insert_deliveries(uow.conn, rows)
            uow.advance_cursor(CONSUMER, page.next_seq)
            return len(rows)

        if await mutate_org(self.core, org_id, SYSTEM, work):
            self.wake(org_id)

    # sender side

    async def _run(self) -> None:
        while True:
            now = time.time()
            for org_id in [o for o, at in self._due.items() if at <= now]:
                del self._due[org_id]
                try:
                    await self._pump(org_id)
                except asyncio.CancelledError:
                    raise
                except NotFound:  # the org was deleted (archived): nothing left to send
                    self.orgs.discard(org_id)
                except Exception:
                    log.exception("webhook sender failed to read org %s", org_id)
                    self.wake(org_id, time.time() + 5.0)
            self._wake.clear()
            timeout = min(self._due.values(), default=now + 60.0) - time.time()
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _pump(self, org_id: str) -> None:
        """Start a worker for every hook of the org whose head delivery is due."""
        heads = await read_org(self.core, org_id, hook_sql.pending_heads)
        now = time.time()
        for head in heads:
            key = (org_id, head["webhook_id"])
            if key in self._workers:
                continue
            if head["due"] > now:
                self.wake(org_id, head["due"])
                continue
            task = asyncio.create_task(self._drain(org_id, head["webhook_id"]))
            self._workers[key] = task
            task.add_done_callback(functools.partial(self._finished, key))

    def _finished(self, key: tuple[str, str], task: asyncio.Task[bool]) -> None:
        self._workers.pop(key, None)
        if not task.cancelled() and task.result():
            self.wake(key[0])  # anything queued for this hook meanwhile is picked up

    async def _drain(self, org_id: str, hook_id: str) -> bool:
        """Send a hook's pending deliveries in seq order until one must wait.

        Outcomes are written by the org's `OutcomeWriter` while the next POST goes out
        (each delivery's outcome and attempt still commit together; outcomes of all the
        org's hooks that queued during one write share the next transaction). The next
        window is read after the last row sent (by seq, id), so a sent row whose outcome
        is not committed yet is never read back as pending, and the writer is flushed
        before the worker ends (a new worker reads from the head). False when it failed
        (a retry is scheduled)."""
        outcomes = self._writers.get(org_id)
        if outcomes is None:
            outcomes = self._writers[org_id] = OutcomeWriter(self.core, org_id)
        after: tuple[int, str] | None = None  # the last row sent: the next window starts here
        try:
            while True:
                window = await read_org(
                    self.core,
                    org_id,
                    functools.partial(
                        hook_sql.pending_window, hook_id=hook_id, limit=self.window, after=after
                    ),
                )
                for row in window:
                    if not row["enabled"] or row["next_attempt_at"] > time.time():
                        return await self._flushed(org_id, hook_id, outcomes)
                    if not await self._attempt(org_id, row, outcomes):
                        return await self._flushed(org_id, hook_id, outcomes)
                    after = (row["seq"], row["id"])
                if len(window) < self.window:
                    return await self._flushed(org_id, hook_id, outcomes)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await outcomes.flush(hook_id)  # keep what was sent (fewer repeats after a restart)
            raise
        except Exception:
            log.exception("webhook delivery failed for hook %s", hook_id)
            self.wake(org_id, time.time() + 5.0)
            return False

    async def _flushed(self, org_id: str, hook_id: str, outcomes: OutcomeWriter) -> bool:
        """Write what is queued; False (and a retry in 5 s) when that fails: the rows stay
        pending and are sent again (at least once)."""
        try:
            await outcomes.flush(hook_id)
        except Exception:
            log.exception("webhook outcomes of hook %s not written", hook_id)
            self.wake(org_id, time.time() + 5.0)
            return False
        return True

    async def _attempt(self, org_id: str, row: sqlite3.Row, outcomes: OutcomeWriter) -> bool:
        """POST one delivery and queue its outcome; True when the hook may go on."""
        body: bytes = row["body"]
        headers = signed_headers(row["secret"], row["event"], row["id"], body)
        host = _host(row["url"])
        gate = self._hosts.get(host)
        if gate is None:
            gate = self._hosts[host] = Gate(self._host_limit)
        # the host's gate first: a worker queued behind a slow host must not hold one of
        # the global slots that other hosts' deliveries need
        if not gate.try_enter():
            await gate.enter()
        try:
            if not self._slots.try_enter():
                await self._slots.enter()
            try:
                outcome = await self.outbound.post(row["url"], body, headers)
            finally:
                self._slots.leave()
        finally:
            gate.leave()
        settle, retry_at = self._settle(row, outcome, headers)
        outcomes.add(row["webhook_id"], settle)
        WEBHOOK_DELIVERIES["retry" if settle[2] == "pending" else settle[2]] += 1
        if retry_at is not None:
            self.wake(org_id, retry_at)
            return False
        return outcome.status != 410

    def _settle(
        self, row: sqlite3.Row, outcome: Outcome, headers: dict[str, str]
    ) -> tuple[hook_sql.Outcome, float | None]:
        """The delivery's new state after `outcome`, and when to retry (None: settled)."""
        retry_at: float | None = None
        if outcome.ok:
            status = "delivered"
        elif outcome.error == "blocked_address":
            status = "blocked"
        elif outcome.status == 410:
            status = "failed"
        else:
            retry_at = time.time() + self.schedule(row["attempt_count"] + 1)
            status = "pending" if retry_at <= row["give_up_at"] else "failed"
            retry_at = retry_at if status == "pending" else None
        settle = (
            row["id"], iso_at(time.time()), status, retry_at, headers_json(headers),
            outcome.status, outcome.body, outcome.error, outcome.duration_ms,
        )  # fmt: skip
        return settle, retry_at


_second: list[Any] = [None, ""]


def iso_at(moment: float) -> str:
    """`ids.iso` of a Unix time, with the formatted second cached: an outcome's time is
    stamped once per delivery, and strftime through a datetime was ~10 µs of it."""
    whole = int(moment)
    if _second[0] != whole:
        _second[0], _second[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second[1]}.{int((moment - whole) * 1000):03d}Z"


def running(core: Core) -> WebhookService | None:
    """The core's running WebhookService, if any (the API wakes it after its writes)."""
    for service in reversed(core.background.running):
        if isinstance(service, WebhookService) and service.started:
            return service
    return None
