"""The change feed: committed change batches after a seq, filtered to what a reader may see.

Everything that reacts to changes reads them here — WebSocket catch-up, script
triggers, webhook delivery, notifications, sync pull — never with SQL of its own:

    page = await since(core, org_id, cursor, user_id=ann, limit=1000)
    for batch in page.batches: ...
    cursor = page.next_seq

Guarantees: batches come whole (a batch is never split across pages) and in
seq order; `next_seq` is the last seq *examined*, which can lie past the last
batch returned when rows were filtered out, so a reader never re-reads what it
was not allowed to see. Visibility is decided in the same read, on the same
snapshot as the rows: a private project's changes never reach a non-member, and
once a person loses access to a project (removed, project made private or
deleted, org membership ended) nothing more of it reaches them.

Durable consumers keep their place in `consumer_cursors`: `cursor_of()` says
where one stands, and `UnitOfWork.advance_cursor()` moves it inside the unit
that commits the consumer's own writes, so a consumer that crashes before
committing re-processes the batch, and one that committed never does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from tracker.domain.changes import ChangeBatch
from tracker.domain.permissions import OrgRole, ProjectRole, effective_project_role
from tracker.services.access import read_org
from tracker.services.runtime import Core
from tracker.storage import changes as change_sql
from tracker.storage import orgs as org_sql
from tracker.storage import projects as project_sql
from tracker.storage.changes import BATCH_COLUMN, stored_change

#: How many change rows one `since` call examines at most (a batch is never cut,
#: so a page can hold more when its last batch is larger).
DEFAULT_LIMIT = 1000

_BATCH = itemgetter(BATCH_COLUMN)


@dataclass(frozen=True)
class FeedPage:
    """One read of the feed. Resume with `since(..., page.next_seq)`."""

    batches: list[ChangeBatch] = field(default_factory=list)
    #: The last seq examined: every change up to here was either returned or hidden.
    next_seq: int = 0
    #: True when the page reached the end of the log (nothing committed after next_seq).
    at_head: bool = True


@dataclass(frozen=True)
class Visibility:
    """Which projects a reader sees; `None` projects means everything (the system)."""

    projects: frozenset[str] | None
    #: Org-level rows (project NULL: the org, its members) are for org members only.
    org_rows: bool = True

    def allows(self, project: str | None) -> bool:
        if project is None:
            return self.org_rows
        return self.projects is None or project in self.projects


EVERYTHING = Visibility(None)


async def org_role_of(core: Core, org_id: str, user_id: str) -> OrgRole | None:
    """The person's role in the org now (None: not a member)."""
    roles = await core.system.read(lambda conn: org_sql.member_roles(conn, org_id, [user_id]))
    role = roles.get(user_id)
    return OrgRole(role) if role else None


def visibility_in(conn: sqlite3.Connection, user_id: str, org_role: OrgRole | None) -> Visibility:
    """What `user_id` may see in this tenant, decided by the permission table's rule."""
    if org_role is None:
        return Visibility(frozenset(), org_rows=False)
    visible = frozenset(
        project_id
        for project_id, visibility, member_role in project_sql.visibility_facts(conn, user_id)
        if effective_project_role(
            org_role, ProjectRole(member_role) if member_role else None, visibility
        )
        is not None
    )
    return Visibility(visible)


def read_page(
    conn: sqlite3.Connection,
    org_id: str,
    seq: int,
    visibility: Visibility,
    projects: Collection[str] | None,
    limit: int,
) -> FeedPage:
    """The synchronous core of `since` (runs on the tenant's thread)."""
    rows = change_sql.rows_after(conn, seq, limit + 1)
    at_head = len(rows) <= limit
    if not at_head:
        rows = _whole_batches(conn, rows[:limit], rows[limit])
    wanted = None if projects is None else frozenset(projects)
    batches: list[ChangeBatch] = []
    for batch_id, group in groupby(rows, _BATCH):
        if visibility is EVERYTHING and wanted is None:
            changes = tuple(map(stored_change, group))  # no Python frame per row
        else:
            changes = tuple(
                stored_change(row)
                for row in group
                if visibility.allows(row[7]) and (wanted is None or row[7] in wanted)
            )
        if changes:
            batches.append(ChangeBatch(org_id, batch_id, changes))
    next_seq = rows[-1][0] if rows else seq
    return FeedPage(batches, next_seq, at_head)


def _whole_batches(conn: sqlite3.Connection, rows: list[Any], peek: Any) -> list[Any]:
    """Cut `rows` so that no batch is split: drop a trailing batch that continues past
    the page, unless it is the only one (then read the rest of it)."""
    last_batch = rows[-1][BATCH_COLUMN]
    if peek[BATCH_COLUMN] != last_batch:
        return rows
    keep = [row for row in rows if row[BATCH_COLUMN] != last_batch]
    if keep:
        return keep
    return rows + change_sql.rows_of_batch_after(conn, rows[-1][0], last_batch)


async def since(
    core: Core,
    org_id: str,
    seq: int,
    *,
    user_id: str | None = None,
    projects: Collection[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> FeedPage:
    """Committed batches after `seq`, whole and in order, as `user_id` may see them.

    `user_id=None` reads as the system (everything: webhooks, scripts and
    notifications filter by their own rules). `projects` narrows to those
    project ids (org-level rows are then left out).
    """
    role = None if user_id is None else await org_role_of(core, org_id, user_id)

    def read(conn: sqlite3.Connection) -> FeedPage:
        seen = EVERYTHING if user_id is None else visibility_in(conn, user_id, role)
        return read_page(conn, org_id, seq, seen, projects, limit)

    return await read_org(core, org_id, read)


async def head(core: Core, org_id: str) -> int:
    """The tenant's highest committed seq."""
    return await read_org(core, org_id, change_sql.head)


async def cursor_of(core: Core, org_id: str, name: str) -> int:
    """Where durable consumer `name` stands in this tenant (0 if it never advanced)."""
    return await read_org(core, org_id, lambda conn: change_sql.cursor_of(conn, name))
