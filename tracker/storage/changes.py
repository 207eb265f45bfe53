"""SQL on the change log (`changes`), its issue-history index (`issue_changes`) and
the change feed's consumer cursors (`consumer_cursors`).

The log is append-only: rows are inserted here and read back in seq order; no
statement in the code base updates or deletes one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from tracker.domain.changes import Change, StoredChange

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
