"""Email notifications as one background service: the feed consumer and the sender.

    CORE_SERVICES = (..., notifications_service)      # tracker/core.py

With `RHYTHM_SMTP_URL` and `RHYTHM_MAIL_FROM` set, `start` runs the
"notifications" FeedConsumer (services/notify_queue.py: batches -> queued
notices, cursor advanced in the same unit) and the sender
(services/notify_send.py: one email per person and issue per window). Without
them it logs once that notifications are off and runs nothing; watchers and
preferences still work. At start the core's tenant scan (services/tenant_scan.py,
after the server answers) resumes every live org that has unread feed or queued
notices (a restart loses nothing). docs/notifications.md.
"""

from __future__ import annotations

import logging
import sqlite3

from tracker.outbound.mail import Mailer, parse_smtp_url
from tracker.services.feed import FeedPage
from tracker.services.feed_consumer import FeedConsumer
from tracker.services.notify_queue import CONSUMER, handle_page
from tracker.services.notify_send import NotificationSender
from tracker.services.runtime import Core
from tracker.storage import notifications as notify_sql

log = logging.getLogger(__name__)


class NotificationService:
    """The background service; see the module docstring."""

    name = "notifications"

    def __init__(self, core: Core, mailer: Mailer | None = None) -> None:
        self.core = core
        settings = core.settings
        if mailer is None and settings.notifications_on:
            assert settings.smtp_url is not None
            mailer = Mailer(parse_smtp_url(settings.smtp_url))
        self.mailer = mailer
        self.sender = NotificationSender(core, mailer) if mailer else None
        self.consumer = FeedConsumer(core, CONSUMER, self._handle)
        self._running = False

    async def _handle(self, org_id: str, page: FeedPage) -> None:
        assert self.sender is not None
        await handle_page(self.core, org_id, page, self.sender.schedule)

    async def start(self) -> None:
        if self.sender is None or self.mailer is None:
            log.info("email notifications are off (set RHYTHM_SMTP_URL and RHYTHM_MAIL_FROM)")
            return
        log.info("email notifications via %s", self.mailer.target.describe())
        await self.consumer.start()
        await self.sender.start()
        self._running = True
        self.core.scan.want("notifications", _backlog, self._scanned)

    async def stop(self) -> None:
        self._running = False
        if self.sender is not None:
            await self.sender.stop()
            await self.consumer.stop()

    async def idle(self) -> None:
        """Wait until the feed is read and no window is open (tests)."""
        await self.core.scan.idle()
        await self.consumer.idle()
        if self.sender is not None:
            await self.sender.idle()

    def _scanned(self, org_id: str, backlog: tuple[bool, str | None]) -> None:
        """Poke an org whose feed is unread and schedule its queued windows."""
        if not self._running or self.sender is None:
            return  # stopped meanwhile: the next start scans again
        unread, oldest = backlog
        if unread:
            self.consumer.poke(org_id)
        if oldest is not None:
            self.sender.schedule(org_id, oldest)


def _backlog(conn: sqlite3.Connection) -> tuple[bool, str | None]:
    return notify_sql.backlog(conn, CONSUMER)


def mail_queued(core: Core, org_id: str) -> None:
    """Something with no batching window was queued in `org_id` (a script's email, in
    the run's own commit): the running sender looks at the org now."""
    for service in core.background.running:
        if isinstance(service, NotificationService) and service.sender is not None:
            service.sender.wake(org_id)


def notifications_service(core: Core) -> NotificationService:
    """The factory CORE_SERVICES lists."""
    return NotificationService(core)
