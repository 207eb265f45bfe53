"""kill -9 during a write burst, with the tenant at synchronous NORMAL and FULL: every
write acknowledged before the kill is there after restart, and the file is sound.

(A kill cannot test fsync policy, only that nothing is acknowledged before its
COMMIT; power-cut testing needs LazyFS or similar: docs/operations-data.md.)
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tracker.core import open_core

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
async def test_every_acknowledged_write_survives_sigkill(synchronous: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.write_crash_child", str(data), synchronous,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(lines) < 60:  # setup done and a burst under way
                line = await child.stdout.readline()
                assert line, "the child died before the burst"
                lines.append(line.decode().strip())
        await asyncio.sleep(random.uniform(0.05, 0.3))
    finally:
        child.send_signal(signal.SIGKILL)
        rest = await child.stdout.read()
        await child.wait()
    lines += [
        line for line in rest.decode().splitlines() if line.endswith(tuple("0123456789abcdef"))
    ]
    org_id = lines[0].split()[1]
    assert lines[1] == "HELD True"
    issues = {line.split()[1] for line in lines if line.startswith("ISSUE ")}
    comments = {line.split()[1] for line in lines if line.startswith("COMMENT ")}
    assert len(issues) > 30 and comments

    db = data / org_id / "tracker.db"
    with sqlite3.connect(db) as conn:  # what a restart finds (WAL recovery on open)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in conn.execute("SELECT id FROM issues")}
        stored_comments = {r[0] for r in conn.execute("SELECT id FROM comments")}
        logged = {
            r[0] for r in conn.execute("SELECT entity_id FROM changes WHERE entity = 'issue'")
        }
    assert issues <= stored and comments <= stored_comments and issues <= logged
    async with (
        open_core(make_settings(data), background=False) as core,  # the server restarts
        core.tenants.lease(org_id) as tenant,
    ):
        count = await tenant.read(lambda c: c.execute("SELECT count(*) FROM issues").fetchone()[0])
    assert count == len(stored)
