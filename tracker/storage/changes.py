"""SQL on the change log (`changes`), its issue-history index (`issue_changes`) and
the change feed's consumer cursors (`consumer_cursors`).

The log is append-only: rows are inserted here and read back in seq order; no
statement in the code base updates or deletes one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from tracker.domain.changes import Change, StoredChange
from tracker.storage.issue_shape import IMPORTED_OBJECT

#: One encoder for every change row: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

_INSERT_CHANGE = """
INSERT INTO changes (id, at, actor, origin, entity, entity_id, project, op, field,
                     old, new, batch, client_id, mutation_id, version, meta)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_COLUMNS = (
    "seq, id, at, actor, origin, entity, entity_id, project, op, field, old, new, batch, "
    "version, meta, client_id, mutation_id"
)


#: Where `batch` sits in a row selected with `_COLUMNS`.
BATCH_COLUMN = 12


def to_json(value: Any) -> str | None:
    return None if value is None else _encode(value)


def _from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def append(conn: sqlite3.Connection, row: tuple[Any, ...]) -> int:
    """Insert one change row (the `_INSERT_CHANGE` column order, JSON already
    encoded) and return its seq."""
    return int(conn.execute(_INSERT_CHANGE, row).lastrowid or 0)


def index_for_issue(conn: sqlite3.Connection, issue_id: str, seq: int) -> None:
    """Make change `seq` part of the issue's history (read through `issue_changes`)."""
    conn.execute("INSERT INTO issue_changes (issue_id, seq) VALUES (?, ?)", (issue_id, seq))


def head(conn: sqlite3.Connection) -> int:
    """The highest committed seq (0 for an empty log)."""
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])


def row_to_change(row: sqlite3.Row) -> Change:
    """Rebuild a Change from a stored row selected by column name (`SELECT *`)."""
    return Change(
        seq=row["seq"], id=row["id"], at=row["at"], actor=row["actor"], origin=row["origin"],
        entity=row["entity"], entity_id=row["entity_id"], project=row["project"], op=row["op"],
        field=row["field"], old=_from_json(row["old"]), new=_from_json(row["new"]),
        batch=row["batch"], version=row["version"], meta=_from_json(row["meta"]),
        client_id=row["client_id"], mutation_id=row["mutation_id"],
    )  # fmt: skip


#: A row selected with `_COLUMNS` (Change's own order) as a lazily decoded change: the
#: tuple is taken as it is, nothing parsed, and no Python frame runs per row (the
#: feed's hot loop maps it over whole pages).
stored_change: Callable[[tuple[Any, ...]], StoredChange] = partial(tuple.__new__, StoredChange)


def issue_changes(
    conn: sqlite3.Connection, issue_id: str, before_seq: int | None, limit: int
) -> list[sqlite3.Row]:
    """Changes about one issue, newest first, strictly before `before_seq`.

    issue_changes (issue_id, seq) is written beside every change row that names
    an issue (`index_for_issue`), so this is one primary-key range.
    """
    sql = (
        "SELECT c.* FROM issue_changes ic JOIN changes c ON c.seq = ic.seq "
        "WHERE ic.issue_id = ?"
        + (" AND ic.seq < ?" if before_seq is not None else "")
        + " ORDER BY ic.seq DESC LIMIT ?"
    )
    args: tuple[object, ...] = (issue_id,) if before_seq is None else (issue_id, before_seq)
    return conn.execute(sql, (*args, limit)).fetchall()


def _plain(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor returning plain tuples (cheaper than sqlite3.Row for bulk reads)."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return cursor


def rows_after(conn: sqlite3.Connection, seq: int, limit: int) -> list[tuple[Any, ...]]:
    """Up to `limit` rows with seq > `seq`, in seq order (a primary-key range scan)."""
    return (
        _plain(conn)
        .execute(f"SELECT {_COLUMNS} FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        .fetchall()
    )


def rows_of_batch_after(conn: sqlite3.Connection, seq: int, batch: str) -> list[tuple[Any, ...]]:
    """The rest of `batch` after `seq`: a batch is a contiguous seq range (one writer
    per tenant, a unit's rows appended one after the other), so the scan stops at
    the first row of another batch."""
    rows: list[tuple[Any, ...]] = []
    cursor = _plain(conn).execute(
        f"SELECT {_COLUMNS} FROM changes WHERE seq > ? ORDER BY seq", (seq,)
    )
    for row in cursor:
        if row[BATCH_COLUMN] != batch:
            break
        rows.append(row)
    cursor.close()
    return rows


def changes_by_seq(conn: sqlite3.Connection, seqs: Iterable[int]) -> list[StoredChange]:
    """The change rows with these seqs, in seq order."""
    wanted = sorted(set(seqs))
    if not wanted:
        return []
    rows = (
        _plain(conn)
        .execute(
            f"SELECT {_COLUMNS} FROM changes WHERE seq IN (SELECT value FROM json_each(?)) "
            "ORDER BY seq",
            (_encode(wanted),),
        )
        .fetchall()
    )
    return [stored_change(r) for r in rows]


# --- consumer cursors --------------------------------------------------------------------


def cursor_of(conn: sqlite3.Connection, name: str) -> int:
    """Where consumer `name` stands: the last seq it committed as handled (0 if new)."""
    row = conn.execute("SELECT seq FROM consumer_cursors WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else int(row[0])


def advance_cursor(conn: sqlite3.Connection, name: str, seq: int, at: str) -> None:
    """Move consumer `name` to `seq`; never backwards (a late or repeated advance is a no-op)."""
    conn.execute(
        """
        INSERT INTO consumer_cursors (name, seq, updated_at) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
        WHERE excluded.seq > consumer_cursors.seq
        """,
        (name, seq, at),
    )


def cursors(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every consumer and where it stands (for operators and tests)."""
    return conn.execute(
        "SELECT name, seq, updated_at FROM consumer_cursors ORDER BY name"
    ).fetchall()


# --- bulk append (imports) ---------------------------------------------------------------

#: The columns every change row of one import batch shares, in this order.
ChangeStamp = tuple[str, str | None, str, str, str | None, int | None]
_STAMP = "?4, ?5, ?6, ?7, ?8, ?9"  # at, actor, origin, batch, client_id, mutation_id
#: A UUIDv7 (tracker.domain.ids.new_id's layout) from ?10, the batch's time as
#: 'xxxxxxxx-xxxx' (12 hex digits of milliseconds): version 7, RFC 4122 variant,
#: 74 random bits.
_CHANGE_ID = """lower(?10 || '-7' || substr(hex(randomblob(2)), 2) || '-'
    || substr('89ab', 1 + (random() & 3), 1) || substr(hex(randomblob(2)), 2) || '-'
    || hex(randomblob(6)))"""

#: One `create` row per imported issue with its image as the API shows it (ISSUE_JSON's
#: shape, less the links an imported issue cannot have yet: see issue_shape.IMPORTED);
#: ?1 project key, ?2 first row id, ?3 last row id. Walking the rowid range in order
#: gives seqs in row order without a sort.
_LOG_ISSUES = f"""
INSERT INTO changes (at, actor, origin, batch, client_id, mutation_id, id, entity, entity_id,
                     project, op, new, version, meta)
SELECT {_STAMP}, {_CHANGE_ID}, 'issue', i.id, i.project_id, 'create', {IMPORTED_OBJECT},
       1, json_object('issue', i.id)
FROM issues i JOIN stages s ON s.id = i.stage_id
WHERE i.row_id BETWEEN ?2 AND ?3
ORDER BY i.row_id
"""

#: One `create` row per imported comment (the row as comments.create_comment logs it);
#: ?1 project id, ?2 first comment row id, ?3 last.
_LOG_COMMENTS = f"""
INSERT INTO changes (at, actor, origin, batch, client_id, mutation_id, id, entity, entity_id,
                     project, op, new, version, meta)
SELECT {_STAMP}, {_CHANGE_ID}, 'comment', c.id, ?1, 'create',
       json_object('id', c.id, 'issue_id', c.issue_id, 'author', c.author, 'body', c.body,
                   'created_at', c.created_at, 'updated_at', c.updated_at,
                   'version', c.version),
       1, json_object('issue', c.issue_id)
FROM comments c
WHERE c.row_id BETWEEN ?2 AND ?3
ORDER BY c.row_id
"""

#: The history index rows of changes seq >= ?1 (each names its issue in meta).
_INDEX_HISTORY = """
INSERT INTO issue_changes (issue_id, seq)
SELECT meta ->> '$.issue', seq FROM changes WHERE seq >= ?1
"""


def log_creates(
    conn: sqlite3.Connection,
    project: tuple[str, str],
    issues: tuple[int, int],
    comments: tuple[int, int],
    stamp: ChangeStamp,
    first_seq: int,
) -> tuple[int, list[str]]:
    """Append the `create` changes of freshly inserted issues and comments, and
    their history index rows, rendered by SQLite; returns the first new seq and
    the change ids in seq order. `first_seq` (from next_row_ids) is where the
    new rows start at the earliest: every row from there on is this batch's.

    `project` is (id, key); `issues` and `comments` are (first, last) row ids,
    consecutive (an empty range writes nothing). Seqs come out in that order
    (issues, then comments): one writer per tenant and AUTOINCREMENT. Rendering
    in SQL keeps the import from JSON-encoding every image in Python, which
    was a sixth of its time.
    """
    (project_id, project_key), millis = project, f"{int(time.time() * 1000):012x}"
    ids = (f"{millis[:8]}-{millis[8:]}",)
    conn.execute(_LOG_ISSUES, (project_key, *issues, *stamp, *ids))
    conn.execute(_LOG_COMMENTS, (project_id, *comments, *stamp, *ids))
    conn.execute(_INDEX_HISTORY, (first_seq,))
    rows = conn.execute(
        "SELECT seq, id FROM changes WHERE seq >= ? ORDER BY seq", (first_seq,)
    ).fetchall()
    return rows[0][0], [row[1] for row in rows]
