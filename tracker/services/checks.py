"""`rhythm check`: is every database sound, is its derived data right, has every
attachment row its file?

Each check reports findings in words, naming the fault (the org, the issue key,
the board column). `repair` fixes what can be fixed safely: orphan files and
half-received uploads older than the repair grace, the search index (rebuilt
from the issues) and the board counters (recounted). A database that fails
`integrity_check` and a missing attachment file are reported, never "repaired":
they need a restore (docs/operations-data.md).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tracker.services import attachments
from tracker.services.access import read_org
from tracker.services.maintenance import repair_org
from tracker.services.runtime import Core
from tracker.storage import derived
from tracker.storage import orgs as org_sql

#: At most this many issues are named per fault kind (then "and N more").
NAMED = 20


@dataclass(frozen=True)
class Finding:
    """One fault: where (an org slug, or `system`), and what is wrong."""

    where: str
    problem: str
    repaired: bool = False


def _search_faults(conn: sqlite3.Connection) -> list[str]:
    complaint = derived.search_index_matches(conn)
    if complaint is None:
        return []
    keys = derived.stale_issues(conn)
    if not keys:
        return [f"search index inconsistent: {complaint}"]
    named = [f"search index entry of {key} differs from the issue" for key in keys[:NAMED]]
    if len(keys) > NAMED:
        named.append(f"search index: {len(keys) - NAMED} more issue(s) differ")
    return named


async def _derived(core: Core, org_id: str, slug: str, repair: bool) -> list[Finding]:
    search = await read_org(core, org_id, _search_faults)
    counts = await read_org(core, org_id, derived.stage_count_faults)
    if repair and (search or counts):
        if search:
            await repair_org(core, org_id, derived.rebuild_search)
        if counts:
            await repair_org(core, org_id, derived.recount_stages)
    return [Finding(slug, p, repaired=repair) for p in search] + [
        Finding(slug, f"board count wrong: {p}", repaired=repair) for p in counts
    ]


async def check_all(core: Core, *, repair: bool = False) -> list[Finding]:
    """Every database's integrity, derived data and files; nothing found is an empty list."""
    findings = [Finding("system", p) for p in await core.system.read(derived.integrity)]
    for row in await core.system.read(org_sql.all_live_orgs):
        org_id, slug = row["id"], row["slug"]
        findings += [Finding(slug, p) for p in await read_org(core, org_id, derived.integrity)]
        findings += await _derived(core, org_id, slug, repair)
        files = await attachments.check_files(core, org_id, repair=repair)
        findings += [
            Finding(slug, f"attachment file missing: {sha256}") for sha256 in files.missing
        ]
        findings += [
            Finding(slug, f"file without an attachment row: {sha256}", repaired=repair)
            for sha256 in files.orphans
        ]
    return findings
