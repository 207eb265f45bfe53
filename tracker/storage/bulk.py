"""Bulk import of issues and their comments: one statement per table, FTS rows written directly.

Rows travel to SQLite as one JSON document per table and are inserted with
`INSERT … SELECT … FROM json_each(?)`. Measured on this box (5,000-issue
transactions, full tenant schema): 25-34 µs per issue row this way against
76-92 µs with `executemany` over dicts or tuples, where every row is a
statement execution of its own that opens the table's eleven indexes and the
board-count trigger. Comments and search rows cost about the same either way;
as documents they leave the writer thread without the GIL for the whole
statement, so a pipelined import (tracker.services.imports) prepares the next
batch on another thread meanwhile. JSON cannot carry a NUL character through
SQLite's `->>` (it ends the text), so a batch whose text holds one is written
with `executemany` instead (`has_nul`).

The per-issue path (`index_issue`) re-reads each issue through the
`issue_search_source` view; an import already holds the text, so it assigns
row ids itself (one writer per tenant, inside the caller's transaction) and
feeds the FTS5 index in the same transaction (~2.5x faster than triggers).
The comments text of an issue must be exactly what the view yields, or a later
`unindex_issue` would remove the wrong tokens: the view concatenates bodies
with a newline in `comments_issue` index order (created_at, then row id), so
callers pass each issue's comments oldest first (`comments_text` below).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from tracker.storage.search_index import SAVE_CJK as _SAVE_CJK
from tracker.storage.search_index import cjk_columns


class BulkIssue(NamedTuple):
    """An issue row as the import writes it; row id and number come from the batch.

    The first twelve fields are the JSON document's columns (`_INSERT_ISSUES`)."""

    id: str
    title: str
    description: str
    type: str
    priority: str
    stage_id: str
    rank: str
    reporter: str
    comment_count: int
    created_at: str
    updated_at: str
    resolved_at: str | None
    comments_text: str  # its comment bodies, oldest first, joined by "\n" (the view's text)


class BulkComment(NamedTuple):
    """A comment row as the import writes it; its row id comes from the batch."""

    id: str
    issue_id: str
    author: str
    body: str
    created_at: str


#: JSON for the documents: compact, UTF-8 text as is (a lone surrogate fails to bind).
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":")).encode

_ISSUE_TARGET = """
INSERT INTO issues (row_id, number, project_id, id, title, description, type, priority,
                    stage_id, rank, reporter, comment_count, created_at, updated_at,
                    resolved_at)
"""
#: ?1 project id, ?2 first row id, ?3 first number, ?4 JSON array of BulkIssue rows.
_INSERT_ISSUES = f"""{_ISSUE_TARGET}
SELECT ?2 + j.key, ?3 + j.key, ?1, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3,
       j.value ->> 4, j.value ->> 5, j.value ->> 6, j.value ->> 7, j.value ->> 8,
       j.value ->> 9, j.value ->> 10, j.value ->> 11
FROM json_each(?4) AS j
"""
_INSERT_ISSUE_ROW = f"{_ISSUE_TARGET} VALUES (?, ?, ?, {', '.join('?' * 12)})"

#: ?1 first row id, ?2 JSON array of [title, description, comments text and their three
#: CJK-segmented copies] per issue: what the `issue_search_source` view yields.
_INDEX_ISSUES = """
INSERT INTO issue_search (rowid, title, description, comments, title_cjk, description_cjk,
                          comments_cjk)
SELECT ?1 + j.key, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
       j.value ->> 5
FROM json_each(?2) AS j
"""
_INDEX_ISSUE_ROW = (
    "INSERT INTO issue_search (rowid, title, description, comments, title_cjk, description_cjk, "
    "comments_cjk) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
#: ?1 first row id, ?2 JSON array of [position in the batch, the three CJK texts].
_INSERT_CJK = """
INSERT INTO issue_cjk (row_id, title, description, comments)
SELECT ?1 + (j.value ->> 0), j.value ->> 1, j.value ->> 2, j.value ->> 3 FROM json_each(?2) AS j
"""
_NO_CJK = ("", "", "")

_COMMENT_TARGET = (
    "INSERT INTO comments (row_id, id, issue_id, author, body, created_at, updated_at)"
)
#: ?1 first row id, ?2 JSON array of BulkComment rows (updated_at = created_at).
_INSERT_COMMENTS = f"""{_COMMENT_TARGET}
SELECT ?1 + j.key, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
       j.value ->> 4
FROM json_each(?2) AS j
"""
_INSERT_COMMENT_ROW = f"{_COMMENT_TARGET} VALUES (?, ?, ?, ?, ?, ?, ?6)"


def reserve_numbers(conn: sqlite3.Connection, project_id: str, count: int) -> int:
    """Take `count` consecutive issue numbers of a project; returns the first."""
    row = conn.execute(
        "UPDATE projects SET next_number = next_number + ? WHERE id = ? "
        "RETURNING next_number - ? AS first",
        (count, project_id, count),
    ).fetchone()
    return int(row["first"])


_PLAN = """
SELECT p.key, (
    SELECT json_group_array(json_array(s.id, s.name, (
        SELECT max(i.rank) FROM issues i
        WHERE i.project_id = p.id AND i.stage_id = s.id AND i.deleted_at IS NULL)))
    FROM stages s WHERE s.project_id = p.id)
FROM projects p WHERE p.id = ?
"""


def project_plan(conn: sqlite3.Connection, project_id: str) -> tuple[str, list[tuple[Any, ...]]]:
    """A project's key and its stages as (id, name, last board rank), sorted by id.

    One statement on purpose: an import's writer asks this while another thread
    prepares the next batch, and each statement costs the writer a wait for the
    GIL (up to the 5 ms switch interval); seven small queries here cost 65 ms.
    """
    key, stages = conn.execute(_PLAN, (project_id,)).fetchone()
    return key, sorted(tuple(stage) for stage in json.loads(stages))


def next_row_ids(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """The first free issue row id, comment row id and change seq, in one statement;
    safe because the caller holds the tenant's write lock."""
    row = conn.execute(
        "SELECT (SELECT coalesce(max(row_id), 0) + 1 FROM issues), "
        "(SELECT coalesce(max(row_id), 0) + 1 FROM comments), "
        "(SELECT coalesce(max(seq), 0) + 1 FROM changes)"
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


class BulkDocuments(NamedTuple):
    """A batch's rows as the JSON documents the INSERT … SELECT statements read."""

    issues: str  # BulkIssue fields 0-11 per issue
    texts: str  # [title, description, comments text, their CJK copies] per issue
    comments: str  # BulkComment per comment
    has_nul: bool  # then the rows go one by one (module docstring)
    cjk: str = "[]"  # [position, CJK copies] of each issue whose text holds CJK


def encode(issues: Sequence[BulkIssue], comments: Sequence[BulkComment]) -> BulkDocuments:
    """The documents of a batch: pure Python, so it can run off the writer thread."""
    segmented = [cjk_columns(i.title, i.description, i.comments_text) for i in issues]
    texts = [(i.title, i.description, i.comments_text, *(cjk or _NO_CJK))
             for i, cjk in zip(issues, segmented, strict=True)]  # fmt: skip
    cjk_rows = [(n, *cjk) for n, cjk in enumerate(segmented) if cjk is not None]
    documents = (
        _encode_rows([i[:12] for i in issues]),
        _encode_rows(texts),
        _encode_rows(comments),
        _encode_rows(cjk_rows),
    )
    return BulkDocuments(
        documents[0], documents[1], documents[2], any(map(_has_nul, documents)), documents[3]
    )


def _encode_rows(rows: Sequence[Sequence[object]], part: int = 200) -> str:
    """A JSON array of rows, encoded `part` rows at a time.

    One json call over a whole batch holds the GIL for tens of milliseconds
    (C code never yields it); between two parts it is handed to the writer
    thread if that waits for it (it needs it for a moment between statements).
    """
    parts = []
    for n in range(0, len(rows), part):
        parts.append(_encode(rows[n : n + part])[1:-1])
        time.sleep(0)  # hand the GIL over if the writer is waiting for it
    return f"[{','.join(parts)}]"


def insert_issues(
    conn: sqlite3.Connection,
    project_id: str,
    first: tuple[int, int, int],
    issues: Sequence[BulkIssue],
    comments: Sequence[BulkComment],
    documents: BulkDocuments,
) -> None:
    """Insert issues and their comments (`documents` = encode(issues, comments)) and
    the issues' search index rows. `first` is (issue row id, issue number, comment
    row id): each row takes first + its position, so the order SQLite walks a
    document in does not matter (and needs no sort)."""
    row_id, number, comment_row = first
    if documents.has_nul:
        conn.executemany(
            _INSERT_ISSUE_ROW,
            [(row_id + n, number + n, project_id, *i[:12]) for n, i in enumerate(issues)],
        )
        conn.executemany(
            _INDEX_ISSUE_ROW,
            [
                (row_id + n, i.title, i.description, i.comments_text,
                 *(cjk_columns(i.title, i.description, i.comments_text) or _NO_CJK))
                for n, i in enumerate(issues)
            ],
        )  # fmt: skip
        conn.executemany(
            _INSERT_COMMENT_ROW, [(comment_row + n, *c) for n, c in enumerate(comments)]
        )
    else:
        conn.execute(_INSERT_ISSUES, (project_id, row_id, number, documents.issues))
        conn.execute(_INDEX_ISSUES, (row_id, documents.texts))
        if comments:
            conn.execute(_INSERT_COMMENTS, (comment_row, documents.comments))
    if documents.cjk != "[]":  # the segmented copies the view reads (search_index)
        cjk_rows = json.loads(documents.cjk)
        if documents.has_nul:
            conn.executemany(_SAVE_CJK, [(row_id + row[0], *row[1:]) for row in cjk_rows])
        else:
            conn.execute(_INSERT_CJK, (row_id, documents.cjk))


def _has_nul(document: str) -> bool:
    """Whether a JSON document may carry a NUL (json escapes it as \\u0000)."""
    return "\\u0000" in document


def set_autocheckpoint(conn: sqlite3.Connection, pages: int) -> None:
    """How many WAL pages a commit may leave before it checkpoints (this connection)."""
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(pages)}")


def optimize(conn: sqlite3.Connection) -> None:
    """After a large import: merge FTS segments and refresh planner statistics."""
    conn.execute("INSERT INTO issue_search (issue_search) VALUES ('optimize')")
    conn.execute("PRAGMA optimize")
