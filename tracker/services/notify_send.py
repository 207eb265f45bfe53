"""The notification sender: one email per person and issue per batching window.

A window opens with the first queued change for a (person, issue) pair and
closes `RHYTHM_NOTIFY_BATCH_SECONDS` later; then everything queued for the pair
goes out as one email. At send time — not when the change was queued — the
sender drops the pair instead when the person turned email off, was disabled,
left the org or can no longer see the project. Queue rows are deleted after the
SMTP server accepted the message (or refused it for good), so a crash in
between sends that email again, with the same Message-ID (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from datetime import timedelta
from functools import partial

from tracker.domain.ids import iso, parse_iso, utcnow
from tracker.domain.notifications import Mail, QueuedNotice, compose
from tracker.domain.permissions import OrgRole
from tracker.domain.script_mail import ScriptMail, compose_script_mail
from tracker.outbound.mail import Mailer, MailRefused
from tracker.services import notify_links
from tracker.services.access import read_org
from tracker.services.changes import UnitOfWork, mutate_org
from tracker.services.feed import Visibility, visibility_in
from tracker.services.notify_queue import SYSTEM
from tracker.services.runtime import Core
from tracker.storage import notifications as notify_sql

log = logging.getLogger(__name__)

#: Pause before retrying an org whose sending failed (server down, bad credentials).
RETRY_SECONDS = 30.0


class NotificationSender:
    """Waits for windows to close and mails them; see the module docstring."""

    name = "notification-sender"

    def __init__(self, core: Core, mailer: Mailer, *, retry_seconds: float = RETRY_SECONDS) -> None:
        self.core = core
        self.mailer = mailer
        self.window = timedelta(seconds=core.settings.notify_batch_seconds)
        self.retry_seconds = retry_seconds
        self._due: dict[str, float] = {}  # org id -> loop time of its earliest closing window
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False

    def wake(self, org_id: str) -> None:
        """Something with no window (a script's email) was queued: look now."""
        self.schedule(org_id, notify_sql.NO_WINDOW)

    def schedule(self, org_id: str, opened_at: str) -> None:
        """A window of `org_id` opened at `opened_at` (ISO): look again when it closes."""
        loop = asyncio.get_running_loop()
        delay = (parse_iso(opened_at) + self.window - utcnow()).total_seconds()
        due = loop.time() + max(0.0, delay)
        if due < self._due.get(org_id, float("inf")):
            self._due[org_id] = due
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notification-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def idle(self) -> None:
        """Wait until no window is open or being sent (tests)."""
        while self._due or self._busy:
            await asyncio.sleep(0.02)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._due:
                await self._wake.wait()
                self._wake.clear()
                continue
            org_id, due = min(self._due.items(), key=lambda item: item[1])
            if due > loop.time():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), due - loop.time())
                self._wake.clear()
                continue
            del self._due[org_id]
            self._busy = True
            try:
                await self.send_due(org_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifications for org %s failed; retrying", org_id)
                self._due[org_id] = min(
                    self._due.get(org_id, float("inf")), loop.time() + self.retry_seconds
                )
            finally:
                self._busy = False

    async def send_due(self, org_id: str) -> None:
        """Send (or drop) every closed window of the org, then wait for the next one.
        A deleted (archived) org is forgotten: its queue went to the archive with it."""
        slug = await self.core.system.read(lambda conn: notify_sql.live_org_slug(conn, org_id))
        if slug is None:
            return
        closed_before = iso(utcnow() - self.window)
        groups = await read_org(
            self.core, org_id, lambda conn: notify_sql.due_groups(conn, closed_before)
        )
        if groups:
            await self._send_groups(org_id, slug, groups)
        oldest = await read_org(self.core, org_id, notify_sql.oldest_pending)
        if oldest is not None:
            self.schedule(org_id, oldest)

    async def _send_groups(
        self, org_id: str, slug: str, groups: list[tuple[str, str | None]]
    ) -> None:
        core = self.core
        people = sorted({recipient for recipient, _ in groups})
        rows = await core.system.read(lambda conn: notify_sql.recipients(conn, org_id, people))
        wanted = {r["id"]: r for r in rows if r["notify_email"] and r["role"] is not None}
        seen = await read_org(core, org_id, lambda conn: _visibility(conn, wanted))
        for recipient, issue_id in groups:
            if issue_id is None:
                person = wanted.get(recipient)
                await self._send_script_mails(org_id, slug, recipient, person, seen)
                continue
            items, issue = await read_org(core, org_id, partial(_group, recipient, issue_id))
            if not items:
                continue
            person = wanted.get(recipient)
            if (
                person is not None
                and issue is not None
                and seen[recipient].allows(issue["project_id"])
            ):
                await self._mail(slug, person, issue, items)
            ids = [item["id"] for item in items]
            await mutate_org(core, org_id, SYSTEM, partial(_remove, recipient, ids))

    async def _send_script_mails(
        self,
        org_id: str,
        slug: str,
        recipient: str,
        person: sqlite3.Row | None,
        seen: dict[str, Visibility],
    ) -> None:
        """The scripts' emails to one person, each its own message, no window; dropped like
        any notification when the person's email is off or the project is out of sight."""
        core = self.core
        items = await read_org(core, org_id, lambda conn: notify_sql.script_mails(conn, recipient))
        for item in items:
            if person is not None and seen[recipient].allows(item["project_id"]):
                summary = json.loads(item["summary"])
                assert core.settings.mail_from is not None
                mail = ScriptMail(
                    to=person["email"],
                    sender=core.settings.mail_from,
                    recipient_id=person["id"],
                    mail_id=summary["mail_id"],
                    script=summary.get("script") or "",
                    org_slug=slug,
                    project_key=item["project_key"] or "?",
                    subject=summary["subject"],
                    body=summary["body"],
                    unsubscribe=notify_links.unsubscribe_url(core, person["id"]),
                )
                try:
                    await self.mailer.send(compose_script_mail(mail))
                except MailRefused as exc:
                    log.warning("script email to %s refused: %s", person["id"], exc)
            # one by one: a crash after a send repeats that email alone (same Message-ID)
            await mutate_org(core, org_id, SYSTEM, partial(_remove, recipient, [item["id"]]))

    async def _mail(
        self,
        slug: str,
        person: sqlite3.Row,
        issue: sqlite3.Row,
        items: list[sqlite3.Row],
    ) -> None:
        core = self.core
        notices = [
            QueuedNotice(item["seq"], item["at"], item["actor"], json.loads(item["summary"]))
            for item in items
        ]
        named = sorted(_user_ids(notices))
        names = await core.system.read(lambda conn: notify_sql.display_names(conn, named))
        key = f"{issue['project_key']}-{issue['number']}"
        assert core.settings.mail_from is not None
        mail = Mail(
            to=person["email"],
            sender=core.settings.mail_from,
            issue_id=issue["id"],
            issue_key=key,
            issue_title=issue["title"],
            org_slug=slug,
            project_key=issue["project_key"],
            link=notify_links.issue_url(core, slug, key),
            unsubscribe=notify_links.unsubscribe_url(core, person["id"]),
            notices=notices,
            names=names,
            recipient_id=person["id"],
        )
        try:
            await self.mailer.send(compose(mail))
        except MailRefused as exc:
            log.warning("notification to %s about %s refused: %s", person["id"], key, exc)


def _visibility(conn: sqlite3.Connection, people: dict[str, sqlite3.Row]) -> dict[str, Visibility]:
    """What each recipient may see in this tenant now (the feed's rule)."""
    return {
        user_id: visibility_in(conn, user_id, OrgRole(row["role"]))
        for user_id, row in people.items()
    }


def _group(
    recipient: str, issue_id: str, conn: sqlite3.Connection
) -> tuple[list[sqlite3.Row], sqlite3.Row | None]:
    return notify_sql.group_items(conn, recipient, issue_id), notify_sql.issue_brief(conn, issue_id)


def _remove(recipient: str, ids: list[int], uow: UnitOfWork) -> None:
    notify_sql.remove(uow.conn, recipient, ids)


def _user_ids(notices: list[QueuedNotice]) -> set[str]:
    """Everyone an email names: the actors, and people in assignee/user values."""
    found = {n.actor for n in notices if n.actor}
    for notice in notices:
        for change in notice.summary.get("changes", []):
            if change.get("field") in ("assignees", "reporter"):
                found |= {v for v in (change.get("old"), change.get("new")) if isinstance(v, str)}
    return found
