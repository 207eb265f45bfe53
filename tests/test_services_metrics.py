"""The core's metrics, read at scrape time: budget hits and background counters move."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import tracker
from tracker.errors import QueryTooExpensive
from tracker.services.counters import SCRIPT_RUNS, WEBHOOK_DELIVERIES
from tracker.services.metrics import CoreCollector

RUNAWAY = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r"


def scrape(core: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in CoreCollector(lambda: core).collect()
        for s in family.samples
    }


async def test_a_query_stopped_at_its_budget_is_counted(core_factory: Any) -> None:
    core = await core_factory()
    before = scrape(core)[("rhythm_query_budget_hits_total", ())]
    with pytest.raises(QueryTooExpensive):
        await core.system.read(lambda conn: conn.execute(RUNAWAY).fetchone(), time_limit_ms=20)
    assert scrape(core)[("rhythm_query_budget_hits_total", ())] == before + 1


async def test_script_runs_and_webhook_deliveries_are_reported_by_status(
    core_factory: Any,
) -> None:
    core = await core_factory()
    runs, deliveries = SCRIPT_RUNS["ok"], WEBHOOK_DELIVERIES["retry"]
    SCRIPT_RUNS["ok"] += 1  # where script_runs._record and the webhook sender count
    WEBHOOK_DELIVERIES["retry"] += 1
    found = scrape(core)
    assert found[("rhythm_script_runs_total", (("status", "ok"),))] == runs + 1
    assert found[("rhythm_webhook_deliveries_total", (("status", "retry"),))] == deliveries + 1
    assert found[("rhythm_websocket_connections", ())] == 0  # no hub without background
    info = (("sqlite", sqlite3.sqlite_version), ("version", tracker.__version__))
    assert found[("rhythm_build_info", info)] == 1
