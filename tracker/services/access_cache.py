"""A process-local cache of access lookups (org by slug + role, project by key + role).

Without it every request pays a system-database hop and a tenant hop before
its own work. Entries are dropped as soon as a committed change batch touches
an org's directory entry, memberships or projects (every such write also logs
a tenant change, so the event bus sees it), which keeps "a removed member is
refused on their very next request" true (tests/test_services_access_cache.py). A
time-to-live of five minutes bounds the damage of any write path that might forget to
log; it was 30 s, which made every rarely used org pay a system-database read again
under a Zipf load over 10,000 orgs (docs/tenants.md, "the org directory's TTL").
"""

from __future__ import annotations

import time
from typing import Any

from tracker.domain.changes import ACCESS_ENTITIES, ChangeBatch

TTL_SECONDS = 300.0
MAX_ENTRIES = 50_000


class AccessCache:
    """(kind, org, key, user) -> value, grouped by org id for cheap invalidation."""

    def __init__(self) -> None:
        self._by_org: dict[str, dict[tuple[Any, ...], tuple[float, Any]]] = {}
        self._slugs: dict[tuple[str, str | None], tuple[float, str, Any]] = {}
        #: (org slug, project key as written, user) -> (expiry, org id, ProjectAccess)
        self._pairs: dict[tuple[str, str, str | None], tuple[float, str, Any]] = {}
        self._size = 0
        #: Bumped by every invalidation: a lookup that began before one must not store
        #: what it read (it may predate the change), see `put_pair`.
        self.epoch = 0

    def get_org(self, slug: str, user_id: str | None) -> Any:
        entry = self._slugs.get((slug, user_id))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[2]

    def put_org(self, slug: str, user_id: str | None, org_id: str, value: Any) -> None:
        self._reserve()
        self._slugs[(slug, user_id)] = (time.monotonic() + TTL_SECONDS, org_id, value)

    def get_pair(self, slug: str, key: str, user_id: str | None) -> Any:
        entry = self._pairs.get((slug, key, user_id))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[2]

    def put_pair(
        self, slug: str, key: str, user_id: str | None, org_id: str, value: Any, epoch: int
    ) -> None:
        """Store an org+project lookup read since `epoch` unless access changed meanwhile."""
        if epoch != self.epoch:
            return
        self._reserve()
        self._pairs[(slug, key, user_id)] = (time.monotonic() + TTL_SECONDS, org_id, value)

    def get(self, org_id: str, key: tuple[Any, ...]) -> Any:
        entry = self._by_org.get(org_id, {}).get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, org_id: str, key: tuple[Any, ...], value: Any) -> None:
        self._reserve()
        self._by_org.setdefault(org_id, {})[key] = (time.monotonic() + TTL_SECONDS, value)

    def invalidate_org(self, org_id: str) -> None:
        self.epoch += 1
        self._size -= len(self._by_org.pop(org_id, {}))
        self._size -= _drop(self._slugs, org_id) + _drop(self._pairs, org_id)

    def clear(self) -> None:
        self.epoch += 1
        self._by_org.clear()
        self._slugs.clear()
        self._pairs.clear()
        self._size = 0

    def on_batch(self, batch: ChangeBatch) -> None:
        """Event-bus subscriber: forget an org's lookups when its access facts change."""
        if any(change.entity in ACCESS_ENTITIES for change in batch.changes):
            self.invalidate_org(batch.org_id)

    def _reserve(self) -> None:
        self._size += 1
        if self._size > MAX_ENTRIES:
            self.clear()
            self._size = 1


def _drop(index: dict[Any, tuple[float, str, Any]], org_id: str) -> int:
    """Remove an org's entries from a slug-keyed index; returns how many."""
    stale = [key for key, (_, oid, _) in index.items() if oid == org_id]
    for key in stale:
        del index[key]
    return len(stale)
