"""The core's metrics, gathered when /metrics is scraped (nothing is counted per request
here): open tenants and tenant opens, writer queues and group-commit sizes, query
budget hits, slow queries, WebSocket connections, script runs and webhook deliveries.
Names and meanings: docs/operations.md.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from tracker import __version__
from tracker.services.counters import SCRIPT_RUNS, WEBHOOK_DELIVERIES
from tracker.services.hub import Hub
from tracker.services.runtime import Core
from tracker.storage.stats import GROUP_BUCKETS, STATS, wal_bytes


class CoreCollector:
    """A prometheus collector over one core (registered on the app's own registry)."""

    def __init__(self, core_of: Callable[[], Core | None]) -> None:
        self._core_of = core_of  # the app's core, once it is open

    def collect(self) -> Iterator[Metric]:
        core = self._core_of()
        if core is None:
            return
        yield from tenant_metrics(core)
        yield from storage_metrics(core)
        yield from background_metrics(core)


def tenant_metrics(core: Core) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "rhythm_build_info", "Versions of this process (always 1).", labels=["version", "sqlite"]
    )
    info.add_metric([__version__, sqlite3.sqlite_version], 1)
    yield info
    yield GaugeMetricFamily(
        "rhythm_tenants_open", "Tenant databases open now.", value=core.tenants.open_count
    )
    yield GaugeMetricFamily(
        "rhythm_tenants_open_max",
        "Cap of open tenants (RHYTHM_MAX_OPEN_TENANTS, lowered to what the open-file limit holds).",
        value=core.tenants.max_open,
    )  # fmt: skip
    yield CounterMetricFamily(
        "rhythm_tenant_opens", "Tenant databases opened (LRU misses included).",
        value=STATS.tenant_opens,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "rhythm_tenant_opens_waiting",
        "Requests waiting for a turn to open their tenant (RHYTHM_TENANT_OPENS_AT_ONCE).",
        value=core.tenants.opens_waiting,
    )


def storage_metrics(core: Core) -> Iterator[Metric]:
    tenants = [db.queue_depth for db in core.tenants.open_databases()]
    depth = GaugeMetricFamily(
        "rhythm_db_write_queue_depth",
        "Write units queued for a database's writer thread, not started yet.",
        labels=["db"],
    )
    depth.add_metric(["system"], core.system.queue_depth)
    depth.add_metric(["tenants"], sum(tenants))
    yield depth
    yield GaugeMetricFamily(
        "rhythm_db_write_queue_depth_max", "Longest writer queue of any open tenant.",
        value=max(tenants, default=0),
    )  # fmt: skip
    wals = [wal_bytes(db.path) for db in core.tenants.open_databases()]
    wal = GaugeMetricFamily(
        "rhythm_db_wal_bytes", "Write-ahead log size (tenants: summed over open ones).",
        labels=["db"],
    )  # fmt: skip
    wal.add_metric(["system"], wal_bytes(core.system.path))
    wal.add_metric(["tenants"], sum(wals))
    yield wal
    yield GaugeMetricFamily(
        "rhythm_db_wal_bytes_max", "Largest write-ahead log of any open tenant.",
        value=max(wals, default=0),
    )  # fmt: skip
    counts, units = STATS.group_snapshot()
    cumulative, buckets = 0, []
    for bound, count in zip((*map(str, GROUP_BUCKETS), "+Inf"), counts, strict=True):
        cumulative += count
        buckets.append((bound, cumulative))
    yield HistogramMetricFamily(
        "rhythm_db_group_commit_units",
        "Units of work committed together in one transaction (group commit).",
        buckets=buckets, sum_value=units,
    )  # fmt: skip
    yield CounterMetricFamily(
        "rhythm_query_budget_hits", "User-driven queries stopped at their time budget (503).",
        value=STATS.budget_hits,
    )  # fmt: skip
    yield CounterMetricFamily(
        "rhythm_slow_queries", "Statements logged by the slow-query log.",
        value=STATS.slow_queries,
    )  # fmt: skip


def background_metrics(core: Core) -> Iterator[Metric]:
    hub = next((s for s in core.background.running if isinstance(s, Hub)), None)
    yield GaugeMetricFamily(
        "rhythm_websocket_connections", "Open WebSocket connections.",
        value=hub.open_connections if hub is not None else 0,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "rhythm_startup_scan_orgs_left",
        "Tenants the start-up scan has still to read (services/tenant_scan.py).",
        value=core.scan.orgs_left,
    )
    yield GaugeMetricFamily(
        "rhythm_startup_scan_running", "1 while the start-up scan runs or is due, else 0.",
        value=int(core.scan.running),
    )  # fmt: skip
    runs = CounterMetricFamily(
        "rhythm_script_runs", "Script runs recorded, by status.", labels=["status"]
    )
    for status, count in sorted(SCRIPT_RUNS.items()):
        runs.add_metric([status], count)
    yield runs
    deliveries = CounterMetricFamily(
        "rhythm_webhook_deliveries", "Webhook delivery attempts, by outcome.", labels=["status"]
    )
    for status, count in sorted(WEBHOOK_DELIVERIES.items()):
        deliveries.add_metric([status], count)
    yield deliveries
