"""One page of a project's issues as SQL: filters, sort keys, keyset bounds.

Kept apart from tracker/storage/issues.py (which also indexes issues for search) so
the CLI's fast read path (cli/fast.py) can page issues with nothing but sqlite3
imported (start-up time: docs/cli.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

_PRIORITY_RANK = (
    "(CASE i.priority WHEN 'critical' THEN 3 WHEN 'major' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END)"
)
#: sort name -> the key columns, unique together, in order (identifiers from constants only)
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "number": ("i.number",),
    "created": ("i.created_at", "i.row_id"),
    "updated": ("i.updated_at", "i.row_id"),
    "priority": (_PRIORITY_RANK, "i.number"),
}


class IssueFilter(NamedTuple):
    """Simple listing filters; each list means "any of", an empty one means no filter.
    (A NamedTuple, not a dataclass: `dataclasses` imports `inspect`, ~10 ms of the fast
    path's start-up.)"""

    statuses: Sequence[str] = ()
    priorities: Sequence[str] = ()
    types: Sequence[str] = ()
    assignees: Sequence[str] = ()  # user ids; "" means unassigned
    tags: Sequence[str] = ()
    sprints: Sequence[str] = ()  # sprint ids; "" means no sprint


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _filter_sql(f: IssueFilter, project_id: str) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if f.statuses:  # the project id is bound again so the subquery runs once, not per row
        where.append(
            "i.stage_id IN (SELECT id FROM stages WHERE project_id = i.project_id "
            f"AND project_id = ? AND name COLLATE NOCASE IN ({_marks(f.statuses)}))"
        )
        args += [project_id, *f.statuses]
    for column, values in (("i.priority", f.priorities), ("i.type", f.types)):
        if values:
            where.append(f"{column} IN ({_marks(values)})")
            args += values
    if f.assignees:
        where.append(_any_of_or_none(f.assignees, "issue_assignees a", "a.user_id"))
        args += [v for v in f.assignees if v]
    if f.tags:
        where.append(
            "EXISTS (SELECT 1 FROM issue_tags it JOIN tags t ON t.id = it.tag_id "
            f"WHERE it.issue_id = i.id AND t.name COLLATE NOCASE IN ({_marks(f.tags)}))"
        )
        args += f.tags
    if f.sprints:
        named = [v for v in f.sprints if v]
        parts = [f"i.sprint_id IN ({_marks(named)})"] if named else []
        parts += ["i.sprint_id IS NULL"] if "" in f.sprints else []
        where.append("(" + " OR ".join(parts) + ")")
        args += named
    return where, args


def _any_of_or_none(values: Sequence[str], table: str, column: str) -> str:
    alias = table.split()[1]
    named = [v for v in values if v]
    parts = []
    if named:
        parts.append(
            f"EXISTS (SELECT 1 FROM {table} WHERE {alias}.issue_id = i.id "
            f"AND {column} IN ({_marks(named)}))"
        )
    if "" in values:
        parts.append(f"NOT EXISTS (SELECT 1 FROM {table} WHERE {alias}.issue_id = i.id)")
    return "(" + " OR ".join(parts) + ")"


def page_sql(
    project_id: str, filters: IssueFilter, sort: str, descending: bool, after: list[Any] | None
) -> tuple[str, list[Any], str]:
    """The row ids of one page (SQL with a trailing LIMIT ?), its args and its ORDER BY."""
    keys = SORT_KEYS[sort]
    where, args = _filter_sql(filters, project_id)
    where = ["i.project_id = ?", "i.deleted_at IS NULL", *where]
    args = [project_id, *args]
    if after is not None:
        op = "<" if descending else ">"
        where.append(f"({', '.join(keys)}) {op} ({_marks(keys)})")
        args += after
    direction = "DESC" if descending else "ASC"
    order = ", ".join(f"{k} {direction}" for k in keys)
    # Pick the page's rows first, then build the full view of just those: a sort
    # that cannot use an index then never computes links for rows it drops.
    page = f"SELECT i.row_id FROM issues i WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?"
    return page, args, order


def sort_key_of(row: sqlite3.Row | Mapping[str, Any], sort: str) -> list[Any]:
    """The keyset values of a listed row (what the next page starts after)."""
    if sort == "number":
        return [row["number"]]
    if sort == "priority":
        rank = {"critical": 3, "major": 2, "normal": 1}.get(row["priority"], 0)
        return [rank, row["number"]]
    column = "created_at" if sort == "created" else "updated_at"
    return [row[column], row["row_id"]]
