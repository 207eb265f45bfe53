"""User ids inside a tenant file: find them (org export) and rewrite them (org import).

A tenant names people only by their system-DB user id, in plain columns
(authors, assignees, members, actors) and inside JSON (change-log values).
Moving an org to another server maps people by email, so their ids change.
Rather than keep a list of "user columns" that every new table must join, both
functions look at every text value of every ordinary table for UUIDs that are
user ids: a UUID names one thing only, so replacing one inside any text is
exact. The full-text index is not scanned (it is derived: rebuilt afterwards
when indexed text changed).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: Columns whose text feeds the search index (rebuild it when one of them changed).
INDEXED = {
    ("issues", "title"), ("issues", "description"), ("comments", "body"),
    ("issue_cjk", "title"), ("issue_cjk", "description"), ("issue_cjk", "comments"),
}  # fmt: skip


def _text_columns(conn: sqlite3.Connection) -> Iterator[tuple[str, str]]:
    tables = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND sql NOT LIKE 'CREATE VIRTUAL%' AND name NOT LIKE 'issue_search_%' ORDER BY name"
    ).fetchall()
    for (table,) in tables:
        for column in conn.execute(f'PRAGMA table_info("{table}")'):
            declared = str(column[2]).upper()
            if declared in ("", "TEXT") or "CHAR" in declared:
                yield str(table), str(column[1])


def referenced(conn: sqlite3.Connection, user_ids: set[str]) -> set[str]:
    """Which of `user_ids` appear anywhere in the tenant's text."""
    found: set[str] = set()

    def collect(value: object) -> None:
        if isinstance(value, str):
            found.update(m for m in UUID.findall(value) if m in user_ids)

    conn.create_function("rhythm_collect_users", 1, collect, deterministic=True)
    for table, column in _text_columns(conn):
        conn.execute(
            f'SELECT count(rhythm_collect_users("{column}")) FROM "{table}" '
            f"WHERE \"{column}\" GLOB '*-*-*-*-*'"
        ).fetchone()
    return found


def remap(conn: sqlite3.Connection, mapping: dict[str, str]) -> bool:
    """Replace every user id in `mapping` by its new id, in the caller's transaction.

    Returns whether text the search index holds changed (then rebuild it).
    """
    mapping = {old: new for old, new in mapping.items() if old != new}
    if not mapping:
        return False

    def swap(value: str | bytes | int | float | None) -> str | bytes | int | float | None:
        if not isinstance(value, str):
            return value
        return UUID.sub(lambda m: mapping.get(m.group(0), m.group(0)), value)

    conn.create_function("rhythm_remap_users", 1, swap, deterministic=True)
    indexed_changed = False
    for table, column in _text_columns(conn):
        cursor = conn.execute(
            f'UPDATE "{table}" SET "{column}" = rhythm_remap_users("{column}") '
            f"WHERE \"{column}\" GLOB '*-*-*-*-*' "
            f'AND "{column}" IS NOT rhythm_remap_users("{column}")'
        )
        if cursor.rowcount and (table, column) in INDEXED:
            indexed_changed = True
    return indexed_changed


def rebuild_search(conn: sqlite3.Connection) -> None:
    """Rebuild the search index from its content view (derived data)."""
    conn.execute("INSERT INTO issue_search (issue_search) VALUES ('rebuild')")
