"""The change-log spine: every mutation of tenant data goes through `mutate`.

    result = await mutate(core, access, actor, lambda uow: work(uow))

`work` runs on the tenant's writer thread inside BEGIN IMMEDIATE; it changes
data with `uow.conn` and calls `uow.record(...)` for each change. The rows are
appended to `changes` in the same transaction (one `batch` id for the whole
unit), and after COMMIT the batch is published on the event bus. A unit that
raises is rolled back and publishes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tracker.domain.ids import new_id, now_iso
from tracker.services.events import Change, ChangeBatch

if TYPE_CHECKING:
    from tracker.services.access import OrgAccess
    from tracker.services.runtime import Core

T = TypeVar("T")
Origin = Literal["api", "cli", "sync", "script", "system", "plugin"]
Op = Literal["create", "update", "delete", "restore", "move"]

_INSERT_CHANGE = """
INSERT INTO changes (id, at, actor, origin, entity, entity_id, project, op, field,
                     old, new, batch, client_id, mutation_id, version, meta)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


@dataclass(frozen=True)
class Actor:
    """Who is acting and through which door; sync fills client_id / mutation_id."""

    user_id: str | None
    origin: Origin = "api"
    client_id: str | None = None
    mutation_id: int | None = None


#: One encoder for every change row: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def to_json(value: Any) -> str | None:
    return None if value is None else _encode(value)


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
        entity: str,
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
        if issue is not None:
            meta = {**(meta or {}), "issue": issue}
        change_id = new_id()
        cursor = self.conn.execute(
            _INSERT_CHANGE,
            (
                change_id, self.at, self.actor.user_id, self.actor.origin, entity, entity_id,
                project, op, field, to_json(old), to_json(new), self.batch,
                self.actor.client_id, self.actor.mutation_id, version, to_json(meta),
            ),
        )  # fmt: skip
        change = Change(
            seq=int(cursor.lastrowid or 0), id=change_id, at=self.at,
            actor=self.actor.user_id, origin=self.actor.origin, entity=entity,
            entity_id=entity_id, project=project, op=op, field=field, old=old, new=new,
            batch=self.batch, version=version, meta=meta,
            client_id=self.actor.client_id, mutation_id=self.actor.mutation_id,
        )  # fmt: skip
        if issue is not None:
            self.conn.execute(
                "INSERT INTO issue_changes (issue_id, seq) VALUES (?, ?)", (issue, change.seq)
            )
        self.recorded.append(change)
        return change

    def record_fields(
        self,
        entity: str,
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
                entity, entity_id, "update", project=project, field=name,
                old=before.get(name), new=after[name], version=version, issue=issue,
            )  # fmt: skip
        return changed


async def mutate(core: Core, access: OrgAccess, actor: Actor, work: Callable[[UnitOfWork], T]) -> T:
    """Run `work` as one transaction on the access's tenant with its change rows;
    publish after commit. The one way a service writes a tenant (reads: `access.read`)."""
    org_id = access.org.id
    unit_holder: list[UnitOfWork] = []

    def run(conn: sqlite3.Connection) -> T:
        uow = UnitOfWork(conn, actor)
        unit_holder.append(uow)
        return work(uow)

    async with core.tenants.lease(org_id) as db:
        result = await db.write(run)
    uow = unit_holder[-1]  # the run that committed (a group abort re-runs a unit)
    core.events.publish(ChangeBatch(org_id, uow.batch, tuple(uow.recorded)))
    return result


def row_to_change(row: sqlite3.Row) -> Change:
    """Rebuild a Change from a stored row (history, sync pull, catch-up)."""
    return Change(
        seq=row["seq"], id=row["id"], at=row["at"], actor=row["actor"], origin=row["origin"],
        entity=row["entity"], entity_id=row["entity_id"], project=row["project"], op=row["op"],
        field=row["field"], old=_from_json(row["old"]), new=_from_json(row["new"]),
        batch=row["batch"], version=row["version"], meta=_from_json(row["meta"]),
        client_id=row["client_id"], mutation_id=row["mutation_id"],
    )  # fmt: skip


def _from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
