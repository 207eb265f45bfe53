"""The raw stack for import benchmarks: plain sqlite3, the tenant schema, no change log.

Used by `bench.cases_import` (interleaved with Rhythm) and `bench.gen --baseline`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from tracker.services.imports import BATCH_SIZE, ImportIssue
from tracker.storage.migrate import apply_migrations


class RawImporter:
    """Plain sqlite3, same schema and pragmas as a tenant, no change log.

    With `documents`, rows go in as JSON documents (`INSERT … SELECT … FROM
    json_each(?)`, the statements tracker.storage.bulk uses) instead of executemany:
    the raw stack given Rhythm's own technique, so what the log costs shows.
    """

    def __init__(self, path: Path, documents: bool = False) -> None:
        self.documents = documents
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        apply_migrations(self.conn, "tenant")
        self.conn.execute("INSERT INTO projects (id, key, name, created_at, updated_at) "
                          "VALUES ('p', 'RAW', 'Raw', 'x', 'x')")  # fmt: skip
        self.conn.execute("INSERT INTO stages VALUES ('s', 'p', 'Open', 'todo', 0, 'x', 'x')")
        self.row_id = 0

    def run(self, issues: list[ImportIssue]) -> tuple[float, float]:
        """Import in BATCH_SIZE transactions; returns (wall, CPU) seconds spent in SQLite."""
        spent = [
            self.run_batch(issues[n : n + BATCH_SIZE]) for n in range(0, len(issues), BATCH_SIZE)
        ]
        return sum(wall for wall, _ in spent), sum(cpu for _, cpu in spent)

    def run_batch(self, chunk: list[ImportIssue]) -> tuple[float, float]:
        """One transaction; returns (wall, CPU) seconds spent in SQLite."""
        issues, comments, fts = [], [], []
        for item in chunk:
            self.row_id += 1
            row_id = self.row_id
            issues.append((row_id, f"i{row_id}", row_id, item.title, item.description,
                           item.reporter, item.created_at, item.updated_at))  # fmt: skip
            bodies = sorted(item.comments, key=lambda c: c.created_at)
            comments += [(f"c{row_id}-{n}", f"i{row_id}", c.author, c.body, c.created_at)
                         for n, c in enumerate(bodies)]  # fmt: skip
            fts.append((row_id, item.title, item.description, "\n".join(c.body for c in bodies)))
        if self.documents:
            return self._run_documents(issues, comments, fts)
        began, cpu = time.perf_counter(), time.process_time()
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO issues (row_id, id, project_id, number, title, description, stage_id, "
            "rank, reporter, created_at, updated_at) "
            "VALUES (?, ?, 'p', ?, ?, ?, 's', 'a0', ?, ?, ?)",
            issues,
        )
        self.conn.executemany(
            "INSERT INTO comments (id, issue_id, author, body, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?5)",
            comments,
        )
        self.conn.executemany(
            "INSERT INTO issue_search (rowid, title, description, comments) VALUES (?, ?, ?, ?)",
            fts,
        )
        self.conn.execute("COMMIT")
        return time.perf_counter() - began, time.process_time() - cpu

    def _run_documents(
        self, issues: list[tuple], comments: list[tuple], fts: list[tuple]
    ) -> tuple[float, float]:
        documents = [json.dumps(rows, ensure_ascii=False) for rows in (issues, comments, fts)]
        began, cpu = time.perf_counter(), time.process_time()
        self.conn.execute("BEGIN")
        self.conn.execute(
            "INSERT INTO issues (row_id, id, project_id, number, title, description, stage_id, "
            "rank, reporter, created_at, updated_at) "
            "SELECT v ->> 0, v ->> 1, 'p', v ->> 2, v ->> 3, v ->> 4, 's', 'a0', v ->> 5, "
            "v ->> 6, v ->> 7 FROM (SELECT value AS v FROM json_each(?))",
            (documents[0],),
        )
        self.conn.execute(
            "INSERT INTO comments (id, issue_id, author, body, created_at, updated_at) "
            "SELECT v ->> 0, v ->> 1, v ->> 2, v ->> 3, v ->> 4, v ->> 4 "
            "FROM (SELECT value AS v FROM json_each(?))",
            (documents[1],),
        )
        self.conn.execute(
            "INSERT INTO issue_search (rowid, title, description, comments) "
            "SELECT v ->> 0, v ->> 1, v ->> 2, v ->> 3 FROM (SELECT value AS v FROM json_each(?))",
            (documents[2],),
        )
        self.conn.execute("COMMIT")
        return time.perf_counter() - began, time.process_time() - cpu
