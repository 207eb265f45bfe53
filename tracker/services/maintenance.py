"""Administrative operations over a whole data directory."""

from __future__ import annotations

from tracker.services.runtime import Core


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
