"""The tenant's sync epoch: present from the first migration, renewed on demand."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tracker.storage import sync_state
from tracker.storage.migrate import apply_migrations


def test_epoch_exists_and_renews(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, "tenant")
    first = sync_state.load(conn)
    assert len(first.epoch) == 32 and first.min_seq == 0
    renewed = sync_state.renew_epoch(conn)
    assert renewed != first.epoch
    assert sync_state.load(conn).epoch == renewed
