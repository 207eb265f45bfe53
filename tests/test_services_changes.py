"""The change-log spine: rows in the same transaction, one batch, events after commit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tracker.domain.changes import Actor, ChangeBatch
from tracker.domain.ids import new_id
from tracker.domain.permissions import OrgRole
from tracker.services.access import OrgAccess, OrgRef
from tracker.services.changes import UnitOfWork, mutate


def tenant(org_id: str) -> OrgAccess:
    """`mutate` writes the tenant an access names; these tests have a bare tenant."""
    return OrgAccess(None, OrgRef(org_id, "t", "T", OrgRole.OWNER))


async def test_changes_commit_with_the_data_and_publish_after(core_factory: Any) -> None:
    core = await core_factory()
    org_id = new_id()
    await core.tenants.create(org_id)
    seen: list[tuple[ChangeBatch, bool]] = []

    def subscriber(batch: ChangeBatch) -> None:
        # Runs on the event loop after COMMIT: the writer is no longer in a transaction.
        db = core.tenants._open[org_id]
        seen.append((batch, db.conn.in_transaction))

    unsubscribe = core.events.subscribe(subscriber)

    def work(uow: UnitOfWork) -> str:
        uow.record("thing", "t1", "create", project=None, new={"a": 1}, issue="i1")
        uow.record("thing", "t1", "update", project=None, field="a", old=1, new=2, issue="i1")
        return "done"

    assert await mutate(core, tenant(org_id), Actor("u1", "cli"), work) == "done"
    assert len(seen) == 1
    batch, in_transaction = seen[0]
    assert in_transaction is False
    assert [c.op for c in batch.changes] == ["create", "update"]
    assert len({c.batch for c in batch.changes}) == 1
    assert batch.changes[0].seq < batch.changes[1].seq

    async with core.tenants.lease(org_id) as db:
        rows = await db.read(
            lambda c: c.execute(
                "SELECT c.op, c.origin, c.actor, c.batch, c.meta FROM issue_changes ic "
                "JOIN changes c ON c.seq = ic.seq WHERE ic.issue_id = 'i1' ORDER BY ic.seq"
            ).fetchall()
        )
    assert [(r["op"], r["origin"], r["actor"]) for r in rows] == [
        ("create", "cli", "u1"),
        ("update", "cli", "u1"),
    ]
    unsubscribe()
    await mutate(core, tenant(org_id), Actor(None, "system"), work)
    assert len(seen) == 1


async def test_rolled_back_unit_publishes_nothing_and_stores_nothing(core_factory: Any) -> None:
    core = await core_factory()
    org_id = new_id()
    await core.tenants.create(org_id)
    seen: list[ChangeBatch] = []
    core.events.subscribe(seen.append)

    def work(uow: UnitOfWork) -> None:
        uow.record("thing", "t1", "create", project=None, new={})
        raise ValueError("rule broken")

    with pytest.raises(ValueError):
        await mutate(core, tenant(org_id), Actor("u1"), work)
    assert seen == []
    async with core.tenants.lease(org_id) as db:
        count = await db.read(lambda c: c.execute("SELECT count(*) FROM changes").fetchone()[0])
    assert count == 0


async def test_a_failing_subscriber_does_not_stop_others(core_factory: Any) -> None:
    core = await core_factory()
    org_id = new_id()
    await core.tenants.create(org_id)
    seen: list[ChangeBatch] = []

    def broken(batch: ChangeBatch) -> None:
        raise RuntimeError("subscriber bug")

    core.events.subscribe(broken)
    core.events.subscribe(seen.append)
    await mutate(
        core, tenant(org_id), Actor("u"), lambda u: u.record("x", "1", "create", project=None)
    )
    assert len(seen) == 1


async def test_concurrent_mutations_get_distinct_batches_in_commit_order(core_factory: Any) -> None:
    core = await core_factory()
    org_id = new_id()
    await core.tenants.create(org_id)
    batches: list[ChangeBatch] = []
    core.events.subscribe(batches.append)

    async def one(i: int) -> None:
        await mutate(
            core,
            tenant(org_id),
            Actor("u"),
            lambda u: u.record("x", str(i), "create", project=None),
        )

    await asyncio.gather(*(one(i) for i in range(20)))
    seqs = [b.changes[0].seq for b in batches]
    assert sorted(seqs) == list(range(1, 21))
    assert len({b.batch for b in batches}) == 20
