"""Listing a project's issues: simple filters, four sort orders, keyset cursors.

Each sort key is unique together with its tie-breaker (number; or time/rank
plus row_id), and a page starts strictly after the last key shown, so
creating or deleting issues while someone pages never duplicates or skips an
issue that existed when the walk began. Sorting by `updated` follows edits: an
issue edited mid-walk moves, so a full export should sort by number or created.
A `q=` query goes to the query language (tracker.services.search) instead.
"""

from __future__ import annotations

import json
import sqlite3

from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.models.base import Page
from tracker.domain.models.issues import Issue, IssueListQuery, split_list
from tracker.errors import BadRequest, ValidationFailed
from tracker.services.access import ProjectAccess, read
from tracker.services.runtime import Core
from tracker.storage import issues as issue_sql

#: What a cursor holds per sort: the sort name, then its key values.
_CURSOR_SHAPES: dict[str, tuple[type, ...]] = {
    "number": (str, int), "created": (str, str, int), "updated": (str, str, int),
    "priority": (str, int, int),
}  # fmt: skip
_SIMPLE_FILTERS = frozenset({"status", "assignee", "tag", "priority", "type", "sprint", "sort"})


def _filters(query: IssueListQuery, user_id: str | None) -> issue_sql.IssueFilter:
    def people(value: str | None) -> list[str]:
        names = split_list(value or "")
        return ["" if n == "none" else (user_id or "") if n == "me" else n for n in names]

    return issue_sql.IssueFilter(
        statuses=split_list(query.status or ""), priorities=split_list(query.priority or ""),
        types=split_list(query.type or ""), assignees=people(query.assignee),
        tags=split_list(query.tag or ""),
        sprints=["" if s == "none" else s for s in split_list(query.sprint or "")],
    )  # fmt: skip


def _after(query: IssueListQuery, sort: str) -> list[object] | None:
    if not query.cursor:
        return None
    decoded = decode_cursor(query.cursor, _CURSOR_SHAPES[sort])
    if decoded[0] != query.sort:
        raise BadRequest("the cursor belongs to another sort order")
    return decoded[1:]


async def list_issues(core: Core, access: ProjectAccess, query: IssueListQuery) -> Page[Issue]:
    """A page of the project's live issues in the requested order."""
    if query.q:
        return await _search(core, access, query)
    return Page[Issue].model_validate_json(await list_issues_json(core, access, query))


async def list_issues_json(core: Core, access: ProjectAccess, query: IssueListQuery) -> bytes:
    """The page as JSON (the `Page[Issue]` shape); without `q` SQLite renders the issues."""
    if query.q:
        return (await _search(core, access, query)).model_dump_json().encode()
    project = access.project
    sort, direction = query.sort.split("-")
    after = _after(query, sort)
    filters = _filters(query, access.user_id)

    def fetch(conn: sqlite3.Connection) -> list[tuple[str, sqlite3.Row]]:
        return issue_sql.list_issues_json(
            conn, project.key, project.id, filters, sort, direction == "desc", after,
            query.limit + 1,
        )  # fmt: skip

    rows = await read(core, access, fetch, time_limit_ms=core.settings.query_time_limit_ms)
    cursor = None
    if len(rows) > query.limit:
        last = rows[query.limit - 1][1]
        cursor = encode_cursor([query.sort, *issue_sql.sort_key_of(last, sort)])
    items = ",".join(text for text, _ in rows[: query.limit])
    return f'{{"items":[{items}],"next_cursor":{json.dumps(cursor)}}}'.encode()


async def _search(core: Core, access: ProjectAccess, query: IssueListQuery) -> Page[Issue]:
    """`q=` speaks the query language; simple filters then belong inside it (422 otherwise)."""
    from tracker.services import search  # imported late: search builds on this module's peers

    mixed = sorted(query.model_fields_set & _SIMPLE_FILTERS)
    if mixed:
        raise ValidationFailed(
            [(f"query.{name}", "with q=, write this filter inside the query") for name in mixed]
        )
    assert query.q is not None
    page = await search.search_project_issues(
        core, access, query.q, limit=query.limit, cursor=query.cursor, highlight=query.highlight
    )
    return page  # type: ignore[return-value]  # SearchHit is an Issue plus snippets
