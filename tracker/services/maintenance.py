"""Administrative operations over a whole data directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from tracker.services.runtime import Core

T = TypeVar("T")


async def live_org_ids(core: Core) -> list[str]:
    rows = await core.system.read(
        lambda conn: conn.execute("SELECT id FROM orgs WHERE archived_at IS NULL").fetchall()
    )
    return [row["id"] for row in rows]


async def migrate_all(core: Core) -> int:
    """Open (and so migrate) every live tenant; the system DB was migrated on open."""
    org_ids = await live_org_ids(core)
    for org_id in org_ids:
        async with core.tenants.lease(org_id):
            pass
    return len(org_ids)


async def repair_org(core: Core, org_id: str, fn: Callable[[sqlite3.Connection], T]) -> T:
    """A write unit on a tenant that records no change: for derived data only (the
    search index, board counts), which is a cache of rows the change log already has."""
    async with core.tenants.lease(org_id) as db:
        return await db.write(fn)
