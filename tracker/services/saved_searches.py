"""Saved searches: a user's named queries (`GET/POST/DELETE /users/me/searches`).

They live in the system database with the account, not in a tenant: one user
reuses them in every org. A query is parsed before it is saved, so a saved
search never fails later on syntax (a field name may still be unknown in some
project, which is the search's own 400 at run time).
"""

from __future__ import annotations

import sqlite3

from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import is_uuid, new_id, now_iso
from tracker.domain.models.base import Page
from tracker.domain.models.search import SavedSearch, SavedSearchIn
from tracker.domain.query import parse_query
from tracker.errors import Conflict, NotFound, QuerySyntaxError, ValidationFailed
from tracker.services.access import resolve_org
from tracker.services.runtime import Core
from tracker.storage import saved_searches as saved_sql

MAX_PER_USER = 500


def _to_saved(row: sqlite3.Row) -> SavedSearch:
    return SavedSearch.model_validate(dict(row))


async def list_saved(core: Core, user_id: str, limit: int, cursor: str | None) -> Page[SavedSearch]:
    """The caller's saved searches by name."""
    after = None
    if cursor:
        name, search_id = decode_cursor(cursor, (str, str))
        after = (name, search_id)
    rows = await core.system.read(lambda conn: saved_sql.page(conn, user_id, after, limit + 1))
    items = [_to_saved(row) for row in rows[:limit]]
    more = len(rows) > limit
    next_cursor = encode_cursor([items[-1].name, items[-1].id]) if more else None
    return Page[SavedSearch](items=items, next_cursor=next_cursor)


async def create_saved(core: Core, user_id: str, data: SavedSearchIn) -> SavedSearch:
    """Save a query under a name (409 if the name is taken); 422 if it does not parse."""
    try:
        parse_query(data.query)
    except QuerySyntaxError as exc:
        raise ValidationFailed([("query", exc.detail)]) from None
    org_id = await _org_id(core, user_id, data.org) if data.org else None
    row = {
        "id": new_id(), "user_id": user_id, "name": data.name.strip(), "query": data.query,
        "org_id": org_id, "created_at": now_iso(),
    }  # fmt: skip

    def write(conn: sqlite3.Connection) -> bool:
        if saved_sql.count_of(conn, user_id) >= MAX_PER_USER:
            raise Conflict(f"at most {MAX_PER_USER} saved searches per user")
        return saved_sql.insert(conn, row)

    if not await core.system.write(write):
        raise Conflict(f"you already have a saved search named '{row['name']}'")
    saved = await core.system.read(lambda conn: saved_sql.one(conn, str(row["id"])))
    assert saved is not None
    return _to_saved(saved)


async def _org_id(core: Core, user_id: str, slug: str) -> str:
    """The org a search is meant for: one the caller belongs to, else a 422."""
    try:
        org = await resolve_org(core, slug, user_id)
    except NotFound:
        org = None
    if org is None or org.role is None:
        raise ValidationFailed([("org", f"no organization '{slug}' of yours")])
    return org.id


async def delete_saved(core: Core, user_id: str, search_id: str) -> None:
    """Delete one of the caller's searches; someone else's is as absent as a missing one."""
    if not is_uuid(search_id):
        raise NotFound("saved search not found")
    if not await core.system.write(lambda conn: saved_sql.delete(conn, user_id, search_id)):
        raise NotFound("saved search not found")
