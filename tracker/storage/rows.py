"""Typed access to query results (typeshed types `fetchone` as Any)."""

from __future__ import annotations

import sqlite3


def first_row(cursor: sqlite3.Cursor) -> sqlite3.Row | None:
    """The first row of a query, or None; every connection here makes `sqlite3.Row`s."""
    row: sqlite3.Row | None = cursor.fetchone()
    return row
