"""`rhythm scope`: which projects a replica holds (docs/offline.md, "Scope").

The server keeps the scope (`PUT sync/clients/{id}`); the next pull brings an
added project in (`scope.snapshot`) and purges a removed one (`scope.removed`,
Replica._drop_projects). Removing a project that still has changes waiting to
be pushed is refused unless the person says to move them to `rejected`
(their text kept there): typed work is never dropped silently.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracker.errors import Conflict, ValidationFailed
from tracker.replica.engine import TENANT_DB, Replica, Report, connect
from tracker.replica.mutations import issue_of
from tracker.replica.store import Mutation

if TYPE_CHECKING:
    from tracker.replica.client import SyncClient

EVERY = ["*"]


@dataclass
class ScopeChange:
    before: list[str]
    after: list[str]
    dropped: list[dict[str, Any]] = field(default_factory=list)  # pending moved to rejected
    report: Report | None = None


def current(replica: Replica) -> list[str]:
    """The scope as this replica last set it: project keys, or ["*"] (every project)."""
    return [s for s in (replica.journal.get("scope") or "*").split(",") if s] or EVERY


def held(replica: Replica) -> list[dict[str, Any]]:
    """The projects in this replica's base, with their issue counts."""
    with closing(connect(replica.base / replica.org_id / TENANT_DB)) as conn:
        rows = conn.execute(
            "SELECT p.id, p.key, p.name, (SELECT count(*) FROM issues i WHERE i.project_id = p.id"
            " AND i.deleted_at IS NULL) AS issues FROM projects p WHERE p.deleted_at IS NULL"
            " ORDER BY p.key"
        ).fetchall()
    return [dict(r) for r in rows]


def pending_in(replica: Replica, keys: list[str]) -> list[Mutation]:
    """Pending mutations on the projects named by `keys` (in base or made offline)."""
    wanted = {k.upper() for k in keys}
    with closing(connect(replica.view / replica.org_id / TENANT_DB)) as conn:
        projects = {r[0] for r in conn.execute("SELECT id, key FROM projects")
                    if str(r[1]).upper() in wanted}  # fmt: skip
        found = []
        for m in replica.journal.pending():
            target = m.args.get("project_id") or _project_of(conn, m)
            if target in projects:
                found.append(m)
    return found


def _project_of(conn: sqlite3.Connection, m: Mutation) -> str | None:
    issue_id = issue_of(m.name, m.args)
    row = conn.execute("SELECT project_id FROM issues WHERE id = ?", (issue_id,)).fetchone()
    if row is None and m.name.startswith("comment."):
        row = conn.execute(
            "SELECT i.project_id FROM comments c JOIN issues i ON i.id = c.issue_id"
            " WHERE c.id = ?", (m.args.get("id"),),
        ).fetchone()  # fmt: skip
    return None if row is None else str(row[0])


async def change(
    replica: Replica, client: SyncClient, add: list[str], remove: list[str],
    drop_pending: bool = False,
) -> ScopeChange:  # fmt: skip
    """Set the new scope on the server, then sync (the pull snapshots or purges)."""
    before = current(replica)
    add = [k.upper() for k in add]
    remove = [k.upper() for k in remove]
    if set(add) & set(remove):
        raise ValidationFailed([("KEY", "a project cannot be added and removed at once")])
    if before == EVERY and remove:
        info = await client.info()
        base = [p["key"].upper() for p in info.get("projects", [])]
    else:
        base = [] if before == EVERY else [k.upper() for k in before]
    if before == EVERY and not remove:
        after = EVERY  # every project you can read already
    else:
        after = sorted((set(base) | set(add)) - set(remove))
    if not after:
        raise ValidationFailed([("KEY", "a replica holds at least one project (to drop the"
                                 " whole replica, delete its folder)")])  # fmt: skip
    result = ScopeChange(before, after)
    if remove:
        waiting = pending_in(replica, remove)
        if waiting and not drop_pending:
            listed = "; ".join(m.label or m.name for m in waiting[:5])
            raise Conflict(
                f"{len(waiting)} change(s) in {', '.join(remove)} wait to be pushed ({listed}):"
                " run `rhythm sync` first, or pass --drop-pending to keep them in"
                " `rhythm sync --rejected` instead"
            )
        for m in waiting:
            problem = {"code": "scope_removed", "status": 404, "title": "Left the replica",
                       "detail": "you removed its project from this replica (rhythm scope"
                                 " remove) before it was pushed"}  # fmt: skip
            replica.journal.reject_locally(m, problem)
            result.dropped.append({"id": m.id, "name": m.name, "label": m.label})
        if waiting:
            last = int(replica.journal.get("last_mutation_id") or 0)
            replica.journal.renumber(replica.journal.require("client_id"), last + 1)
    if after != before:
        answer = await client.request(
            "PUT", f"/orgs/{replica.org}/sync/clients/{replica.journal.require('client_id')}",
            "scope", json={"scope": after},
        )  # fmt: skip
        result.after = list(answer.get("scope") or after)
        replica.journal.set(scope=",".join(result.after))
        if (replica.journal.get("project") or "").upper() in remove:  # the default project
            replica.journal.set(project=result.after[0] if len(result.after) == 1 else "")
    result.report = await replica.sync(client)
    return result
