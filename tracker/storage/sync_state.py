"""SQL on `sync_state`: the tenant's sync epoch and compaction horizon.

The epoch names one continuous history of the change log. Anything that makes
the log stop being a continuation of what replicas already saw (restoring a
backup, importing an org over a fresh file) renews it, and replicas re-clone.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import NamedTuple

from tracker.domain.ids import now_iso


class SyncState(NamedTuple):
    epoch: str
    min_seq: int


def load(conn: sqlite3.Connection) -> SyncState:
    """The tenant's current epoch and the oldest seq a pull may resume after."""
    epoch, min_seq = conn.execute("SELECT epoch, min_seq FROM sync_state WHERE id = 1").fetchone()
    return SyncState(str(epoch), int(min_seq))


def renew_epoch(conn: sqlite3.Connection) -> str:
    """Start a new history: every replica's cursor becomes meaningless. Returns it."""
    epoch = secrets.token_hex(16)
    conn.execute("UPDATE sync_state SET epoch = ?, renewed_at = ? WHERE id = 1", (epoch, now_iso()))
    return epoch
