"""The "notifications" feed consumer: change batches -> per-recipient pending notices.

For each (batch, issue) group of a page (domain.notifications.notice_of), the
recipients are, at the time the page is handled: the issue's watchers
(reporter, assignees, commenters, explicit watchers, minus explicit unwatches),
the people an assignee link names, and the org members an @mention names —
never the person who made the change. Each group is queued once
(`notify_events`) with one `notify_pending` row per recipient, in the same
transaction that advances the consumer's cursor, so a crash re-reads the page
and a commit never queues it twice. Whether a recipient may still see the
project, and wants email at all, is decided at send time (notify_send.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tracker.domain.changes import Actor, ChangeBatch, Entity, Op, Origin
from tracker.domain.events import groups_of
from tracker.domain.ids import iso, utcnow
from tracker.domain.notifications import Notice, notice_of
from tracker.services.changes import UnitOfWork, mutate_org
from tracker.services.feed import FeedPage
from tracker.services.runtime import Core
from tracker.storage import notifications as notify_sql
from tracker.storage import watchers as watcher_sql

#: The consumer's cursor name (tenant migration 0012 starts it at the head).
CONSUMER = "notifications"

#: Changes older than this when first read are not mailed (a server that had
#: notifications off, or was down for days, does not flood inboxes with history).
MAX_AGE = timedelta(days=1)

#: A batch that creates more issues than this is a bulk import: it notifies nobody
#: (an import from another tracker would otherwise mail every reporter per issue).
BULK_CREATES = 20

SYSTEM = Actor(None, Origin.SYSTEM)


def notices_of(page: FeedPage) -> list[Notice]:
    """The page's issue groups worth telling anyone about, oldest first."""
    cutoff = iso(utcnow() - MAX_AGE)
    return [
        notice
        for batch in page.batches
        if batch.changes and batch.changes[0].at >= cutoff and not _bulk_import(batch)
        for group in groups_of(batch.changes)
        if (notice := notice_of(group)) is not None
    ]


def _bulk_import(batch: ChangeBatch) -> bool:
    creates = 0
    for change in batch.changes:
        if change.entity == Entity.ISSUE and change.op == Op.CREATE:
            creates += 1
            if creates > BULK_CREATES:
                return True
    return False


async def handle_page(
    core: Core, org_id: str, page: FeedPage, queued: Callable[[str, str], None]
) -> None:
    """Queue the page's notices and advance the cursor in one unit; then tell the
    sender (`queued(org_id, opened_at)`) when the earliest new window opened."""
    notices = notices_of(page)
    named = await _mentioned_members(core, org_id, notices)

    def work(uow: UnitOfWork) -> None:
        for notice in notices:
            watching = watcher_sql.watchers(uow.conn, notice.issue, as_of=notice.at)
            recipients = {user: "watching" for user in watching}
            recipients.update({user: "assigned" for user in notice.assigned})
            for token in notice.mentioned:
                recipients.update({user: "mentioned" for user in named.get(token, ())})
            recipients.pop(notice.actor or "", None)
            if recipients:
                event = (notice.issue, notice.project, notice.seq, notice.at, notice.actor,
                         notice.summary)  # fmt: skip
                notify_sql.add_event(uow.conn, event, sorted(recipients.items()))
        uow.advance_cursor(CONSUMER, page.next_seq)

    await mutate_org(core, org_id, SYSTEM, work)
    if notices:
        queued(org_id, min(notice.at for notice in notices))


async def _mentioned_members(
    core: Core, org_id: str, notices: list[Notice]
) -> dict[str, list[str]]:
    """{mention token: [user ids]}: `@ann` names every member whose address starts `ann@`;
    `@ann@example.com` names that address. Unknown names notify nobody."""
    tokens = sorted({token for notice in notices for token in notice.mentioned})
    if not tokens:
        return {}
    rows = await core.system.read(lambda conn: notify_sql.members_named(conn, org_id, tokens))
    named: dict[str, list[str]] = {}
    for user_id, email in rows:
        for token in (email, email.partition("@")[0]):
            if token in tokens:
                named.setdefault(token, []).append(user_id)
    return named
