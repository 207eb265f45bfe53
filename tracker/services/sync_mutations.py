"""The mutation registry: what a replica may push, name@v -> handler (docs/sync.md).

Each entry names its REST twin (method and path in the route table) and that
route's permission entry, and its handler applies the change with the SAME
service functions the REST handler uses (`issues.create_in`, `update_in`,
`comments.comment_in`...), inside the push's unit of work, under an access built
by `acting.act_as` with that permission. A test walks this registry against the
route table, as the route walk does for HTTP, so sync is never a laxer door.

A handler runs on the tenant's writer thread; it returns the result fields
(`status` and extras) or raises: a `Rejected` (a sync-specific refusal) or any
RhythmError the services raise (mapped to a rejection code by the push).
"""

from __future__ import annotations

from tracker.services import sync_mutations_issues, sync_mutations_links
from tracker.services.sync_mutation_base import AlreadyDone, Ctx, MutationDef, Rejected

#: name@v -> definition. An unknown pair is `deferred` by the push (not consumed).
REGISTRY: dict[tuple[str, int], MutationDef] = {
    (d.name, d.v): d for d in (*sync_mutations_issues.DEFS, *sync_mutations_links.DEFS)
}

__all__ = ["REGISTRY", "AlreadyDone", "Ctx", "MutationDef", "Rejected"]
