"""The change-log spine: every mutation of tenant data goes through `mutate`.

    result = await mutate(core, access, actor, lambda uow: work(uow))

`work` runs on the tenant's writer thread inside BEGIN IMMEDIATE; it changes
data with `uow.conn` and calls `uow.record(...)` for each change. The rows are
appended to `changes` in the same transaction (one `batch` id for the whole
unit), and after COMMIT the batch is published on the event bus. A unit that
raises is rolled back and publishes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from tracker.domain.changes import Actor, Change, ChangeBatch, Entity, Op
from tracker.domain.ids import new_id, now_iso
from tracker.storage import changes as change_sql
from tracker.storage.changes import to_json

if TYPE_CHECKING:
    from tracker.services.access import OrgAccess
    from tracker.services.runtime import Core

T = TypeVar("T")


@dataclass
class UnitOfWork:
    """The writer-thread side of one mutation: the connection plus the change recorder."""

    conn: sqlite3.Connection
    actor: Actor
    batch: str = field(default_factory=new_id)
    at: str = field(default_factory=now_iso)
    recorded: list[Change] = field(default_factory=list)

    def record(
        self,
        entity: Entity,
        entity_id: str,
        op: Op,
        *,
        project: str | None,
        field: str | None = None,
        old: Any = None,
        new: Any = None,
        version: int | None = None,
        meta: dict[str, Any] | None = None,
        issue: str | None = None,
    ) -> Change:
        """Append one change row now (same transaction) and remember it for publishing.

        `issue` names the issue this change belongs to (the issue itself, or the
        issue of a comment, tag link, relation, time entry...); it is stored as
        meta.issue, which the issue history reads through an index.
        """
        if self.actor.meta is not None:
            meta = {**self.actor.meta, **(meta or {})}
        if issue is not None:
            meta = {**(meta or {}), "issue": issue}
        change_id, actor = new_id(), self.actor
        seq = change_sql.append(
            self.conn,
            (
                change_id, self.at, actor.user_id, actor.origin, entity, entity_id, project, op,
                field, to_json(old), to_json(new), self.batch, actor.client_id,
                actor.mutation_id, version, to_json(meta),
            ),
        )  # fmt: skip
        change = Change(
            seq, change_id, self.at, actor.user_id, actor.origin, entity, entity_id, project,
            op, field, old, new, self.batch, version, meta, actor.client_id, actor.mutation_id,
        )  # fmt: skip
        if issue is not None:
            change_sql.index_for_issue(self.conn, issue, seq)
        self.recorded.append(change)
        return change

    def advance_cursor(self, consumer: str, seq: int) -> None:
        """Move a change-feed consumer's cursor to `seq` in this same transaction, so
        its own writes and its place in the feed commit (or roll back) together."""
        change_sql.advance_cursor(self.conn, consumer, seq, self.at)

    def record_fields(
        self,
        entity: Entity,
        entity_id: str,
        *,
        project: str | None,
        before: dict[str, Any],
        after: dict[str, Any],
        version: int | None = None,
        issue: str | None = None,
    ) -> list[str]:
        """Record one `update` row per field whose value changed; returns their names."""
        changed = [name for name in after if before.get(name) != after[name]]
        for name in changed:
            self.record(
                entity, entity_id, Op.UPDATE, project=project, field=name,
                old=before.get(name), new=after[name], version=version, issue=issue,
            )  # fmt: skip
        return changed


async def mutate(
    core: Core, access: OrgAccess, actor: Actor, work: Callable[[UnitOfWork], T], *,
    dry_run: bool = False,
) -> T:  # fmt: skip
    """Run `work` as one transaction on the access's tenant with its change rows;
    publish after commit. The one way a service writes a tenant (reads: `access.read`).
    With `dry_run`, see `mutate_org`."""
    return await mutate_org(core, access.org.id, actor, work, dry_run=dry_run)


async def mutate_org(
    core: Core, org_id: str, actor: Actor, work: Callable[[UnitOfWork], T], *,
    dry_run: bool = False,
) -> T:  # fmt: skip
    """`mutate` for work that acts on an org known by id with no person's access to
    check: background consumers of the change feed (their actor is the system or a
    script) and replays. Everything else goes through `mutate` with an access.

    With `dry_run`, the transaction is rolled back instead (previews): `work` sees
    its own writes, and nothing is committed or published, no seq or number used.
    """
    unit_holder: list[UnitOfWork] = []

    def run(conn: sqlite3.Connection) -> T:
        uow = UnitOfWork(conn, actor)
        unit_holder.append(uow)
        return work(uow)

    async with core.tenants.lease(org_id) as db:
        if dry_run:
            return await db.dry_run(run)
        result = await db.write(run)
    uow = unit_holder[-1]  # the run that committed (a group abort re-runs a unit)
    core.events.publish(ChangeBatch(org_id, uow.batch, tuple(uow.recorded)))
    return result
