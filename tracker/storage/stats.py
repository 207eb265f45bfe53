"""Process-wide storage counters for `/metrics` (docs/operations.md).

Plain integers, not prometheus objects: storage stays free of the exporter, and the
counters cost an increment where they are bumped. The writer threads bump the
group-commit histogram under a lock (one per group, not per statement); everything
else is bumped on the event loop. The services layer reads them at scrape time.
"""

from __future__ import annotations

import bisect
import os
import threading
from pathlib import Path

#: Upper bounds of the group-commit size buckets (units per transaction); MAX_GROUP is 64.
GROUP_BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)


class StorageStats:
    """Counters that only ever grow (except when a test calls `reset`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.tenant_opens = 0
        self.budget_hits = 0
        self.slow_queries = 0
        self.group_counts = [0] * (len(GROUP_BUCKETS) + 1)  # last: above the largest bound
        self.group_units = 0

    def group_committed(self, units: int) -> None:
        """On a writer thread: one group of `units` units of work ran in one transaction."""
        index = bisect.bisect_left(GROUP_BUCKETS, units)
        with self._lock:
            self.group_counts[index] += 1
            self.group_units += units

    def slow_query(self) -> None:
        """On a database thread: one statement went into the slow-query log."""
        with self._lock:
            self.slow_queries += 1

    def group_snapshot(self) -> tuple[list[int], int]:
        """Per-bucket counts (not cumulative) and the sum of units, read consistently."""
        with self._lock:
            return list(self.group_counts), self.group_units


STATS = StorageStats()


def wal_bytes(path: Path) -> int:
    """Size of a database's write-ahead log (0 when there is none). A WAL that keeps
    growing means a reader holds a snapshot and checkpoints cannot recycle it
    (docs/operations.md); one stat call, for scrapes."""
    try:
        return os.stat(f"{path}-wal").st_size
    except OSError:
        return 0
