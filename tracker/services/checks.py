"""`rhythm check`: is every database sound and does every attachment row have its file?

Each check reports findings in words; `repair` fixes what can be fixed safely
(orphan files and half-received uploads older than the repair grace). Checks of
derived data (search index, board counters) belong here too as they are added.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tracker.services import attachments
from tracker.services.access import read_org
from tracker.services.runtime import Core
from tracker.storage import orgs as org_sql


@dataclass(frozen=True)
class Finding:
    """One fault: where (an org slug, or `system`), and what is wrong."""

    where: str
    problem: str
    repaired: bool = False


def _quick_check(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("PRAGMA quick_check") if row[0] != "ok"]


async def check_all(core: Core, *, repair: bool = False) -> list[Finding]:
    """Every database's integrity and every org's files; nothing found is an empty list."""
    findings = [Finding("system", p) for p in await core.system.read(_quick_check)]
    for row in await core.system.read(org_sql.all_live_orgs):
        org_id, slug = row["id"], row["slug"]
        findings += [Finding(slug, p) for p in await read_org(core, org_id, _quick_check)]
        files = await attachments.check_files(core, org_id, repair=repair)
        findings += [
            Finding(slug, f"attachment file missing: {sha256}") for sha256 in files.missing
        ]
        findings += [
            Finding(slug, f"file without an attachment row: {sha256}", repaired=repair)
            for sha256 in files.orphans
        ]
    return findings
