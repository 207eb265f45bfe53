"""The slow-query log: statements over RHYTHM_SLOW_QUERY_MS, each with its query plan.

Off (the default) it costs nothing: no trace callback is installed and a database's
jobs run unwrapped. On, sqlite3's trace callback marks when each statement starts on
the connection's thread; a statement's time runs until the next one starts or its job
(one read unit, or one group of writes) ends, so it includes stepping its rows. A
statement over the threshold is logged after its job, with `EXPLAIN QUERY PLAN` run
on the same connection (by then the job's transaction is over).

The trace hands over the SQL with its parameters filled in: the plan is explained
from that text (so it is the plan those values get), while the log shows the SQL
with its string and blob literals masked as `?` (numbers stay), so names, emails and
bodies do not land in the log. The threshold is process-wide: `open_core` sets it
(docs/operations.md).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from tracker.storage.stats import STATS

T = TypeVar("T")
log = logging.getLogger("tracker.slow_query")

_threshold_s: float | None = None
_LITERAL = re.compile(r"[xX]?'(?:[^']|'')*'")
MAX_SQL_CHARS = 4000


def configure(threshold_ms: float) -> None:
    """Set the threshold for databases opened from now on; 0 turns the log off."""
    global _threshold_s
    _threshold_s = threshold_ms / 1000 if threshold_ms > 0 else None


def tracer(name: str) -> Tracer | None:
    """A tracer for a database about to open, or None when the log is off."""
    return None if _threshold_s is None else Tracer(name, _threshold_s)


def mask(sql: str) -> str:
    """The SQL with string/blob literals replaced by `?`, cut to MAX_SQL_CHARS."""
    masked = _LITERAL.sub("?", sql.strip())
    return masked if len(masked) <= MAX_SQL_CHARS else masked[:MAX_SQL_CHARS] + "…"


def plan_lines(conn: sqlite3.Connection, sql: str) -> list[str]:
    """EXPLAIN QUERY PLAN as indented lines ("SEARCH issues USING INDEX ...")."""
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    except sqlite3.Error as exc:  # BEGIN/COMMIT/PRAGMA have no plan; say why, never fail
        return [f"(no plan: {exc})"]
    depth: dict[int, int] = {0: -1}
    lines = []
    for row in rows:
        node, parent, detail = row[0], row[1], row[3]
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + str(detail))
    return lines


class Tracer:
    """Times the statements of one database's jobs; lives on that database's thread."""

    def __init__(self, name: str, threshold_s: float) -> None:
        self.name = name
        self.threshold_s = threshold_s
        self._sql: str | None = None  # the statement running now, and since when
        self._since = 0.0
        self._slow: list[tuple[str, float]] = []
        self._explaining = False

    def on_statement(self, sql: str) -> None:
        """sqlite3's trace callback: a statement starts (trigger steps repeat its SQL)."""
        if self._explaining or sql == self._sql:
            return
        now = time.perf_counter()
        self._close_current(now)
        self._sql, self._since = sql, now

    def _close_current(self, now: float) -> None:
        if self._sql is not None and now - self._since >= self.threshold_s:
            self._slow.append((self._sql, now - self._since))
        self._sql = None

    def job(
        self, conn_of: Callable[[], sqlite3.Connection | None], fn: Callable[..., T], *args: object
    ) -> T:
        """Run one job of the thread; afterwards log its slow statements, if any."""
        self._sql, self._slow = None, []
        try:
            return fn(*args)
        finally:
            self._close_current(time.perf_counter())
            if self._slow:
                self._report(conn_of())

    def _report(self, conn: sqlite3.Connection | None) -> None:
        slow, self._slow = self._slow, []
        for sql, seconds in slow:
            STATS.slow_query()
            plan: list[str] = []
            if conn is not None and not sql.lstrip().startswith("--"):
                self._explaining = True
                try:
                    plan = plan_lines(conn, sql)
                finally:
                    self._explaining = False
            shown = mask(sql)
            log.warning(
                "slow query on %s: %.1f ms: %s | plan: %s",
                self.name, seconds * 1000, shown, " / ".join(p.strip() for p in plan) or "-",
                extra={"fields": {"db": self.name, "duration_ms": round(seconds * 1000, 3),
                                  "sql": shown, "plan": plan}},
            )  # fmt: skip
