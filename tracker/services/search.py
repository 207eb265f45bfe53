"""Search across one project or every project of an org the caller can see (SPEC §5).

Parsing, email resolution (system DB) and the cursor happen here; the plan and
its SQL live in tracker.storage.search, and everything that touches the tenant
runs as one read with the query time budget (a runaway becomes a 503, never a
hang). Results are the same Issue shape the issue endpoints return.
"""

from __future__ import annotations

import hashlib
import html
import sqlite3
from typing import Any

from tracker.domain.emails import normalize_email
from tracker.domain.ids import utcnow
from tracker.domain.models.base import Page
from tracker.domain.models.search import (
    Highlight,
    SearchHit,
    decode_search_cursor,
    encode_search_cursor,
)
from tracker.domain.permissions import OrgRole
from tracker.domain.query import Query, parse_query
from tracker.errors import BadRequest
from tracker.services.access import OrgAccess, ProjectAccess, read
from tracker.services.custom_fields import field_defs
from tracker.services.issues import to_issue
from tracker.services.runtime import Core
from tracker.storage import search as search_sql
from tracker.storage import search_pages
from tracker.storage import users as user_sql
from tracker.storage.search_filters import FilterContext, emails_in

MARK_OPEN, MARK_CLOSE = search_pages.MARKS


async def search_project_issues(
    core: Core, access: ProjectAccess, q: str, *, limit: int, cursor: str | None, highlight: bool
) -> Page[SearchHit]:
    """Search one project (the route already checked the caller may read it)."""
    project = access.project
    scope = {project.id: project.key}
    return await _search(core, access, scope, q, limit, cursor, highlight)


async def search_org_issues(
    core: Core, access: OrgAccess, q: str, *, limit: int, cursor: str | None, highlight: bool
) -> Page[SearchHit]:
    """Search every project the caller can see: all for org admins, else org-visible + member."""
    see_all = access.org.role in (OrgRole.ADMIN, OrgRole.OWNER)
    rows = await read(
        core, access, lambda conn: search_pages.visible_projects(conn, access.user_id, see_all)
    )
    scope = {row["id"]: row["key"] for row in rows}
    return await _search(core, access, scope, q, limit, cursor, highlight)


async def _search(
    core: Core, access: OrgAccess, scope: dict[str, str], q: str, limit: int,
    cursor: str | None, highlight: bool,
) -> Page[SearchHit]:  # fmt: skip
    query = parse_query(q)
    after = _decode(cursor, q, query) if cursor else None
    if not scope:
        return Page[SearchHit](items=[], next_cursor=None)
    emails = await resolve_emails(core, emails_in(query.filters))
    ctx = FilterContext(tuple(scope), access.user_id, emails, utcnow())
    spec = search_sql.SearchSpec(query, ctx, limit, after)

    def fetch(conn: sqlite3.Connection) -> Page[SearchHit]:
        page = search_sql.search(conn, spec)
        items = _hits(conn, scope, page, highlight)
        next_cursor = _encode(page.next, q) if page.next else None
        return Page[SearchHit](items=items, next_cursor=next_cursor)

    return await read(core, access, fetch, time_limit_ms=core.settings.query_time_limit_ms)


async def resolve_emails(core: Core, emails: set[str]) -> dict[str, str]:
    """Normalized email -> user id, for `assignee:ann@example.com` and its kin."""
    if not emails:
        return {}
    rows = await core.system.read(lambda conn: user_sql.users_by_email(conn, sorted(emails)))
    return {normalize_email(row["email"]): row["id"] for row in rows}


def _hits(
    conn: sqlite3.Connection, scope: dict[str, str], page: search_sql.SearchPage, highlight: bool
) -> list[SearchHit]:
    rows = search_pages.issue_rows(conn, page.row_ids)
    defs = {
        project_id: field_defs(conn, project_id) for project_id in {r["project_id"] for r in rows}
    }
    marks = (
        search_pages.highlights(conn, page.match, page.row_ids) if highlight and page.match else {}
    )
    hits = []
    for row in rows:
        issue = to_issue(row, scope[row["project_id"]], defs[row["project_id"]])
        snippet = marks.get(row["row_id"])
        hits.append(
            SearchHit(**issue.model_dump(), highlight=_highlight(snippet) if snippet else None)
        )
    return hits


def _highlight(snippets: tuple[str, str, str]) -> Highlight:
    title, description, comments = (to_html(text) for text in snippets)
    return Highlight(
        title=title, description=description, comments=comments if "<mark>" in comments else None
    )


def to_html(text: str) -> str:
    """Escape stored text for HTML, then turn the index's match markers into <mark>."""
    escaped = html.escape(text, quote=True)
    return escaped.replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")


# --- cursor -------------------------------------------------------------------------------


def _fingerprint(q: str) -> str:
    """Ties a cursor to its query: a cursor from another query is refused, not misapplied."""
    return hashlib.sha256(q.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _encode(position: search_sql.Position, q: str) -> str:
    return encode_search_cursor(
        {"q": _fingerprint(q), "p": position.plan, "b": position.bound, "k": list(position.values)}
    )


def _decode(cursor: str, q: str, query: Query) -> search_sql.Position:
    state = decode_search_cursor(cursor)
    if state.get("q") != _fingerprint(q):
        raise BadRequest("the cursor belongs to another query")
    plan, bound, values = state.get("p"), state.get("b"), state.get("k")
    words = any(not term.negated for term in query.terms)
    if (
        plan not in search_sql.PLANS
        or (plan == "plain") == words  # a plan only fits queries of its kind
        or not (bound is None or _is_int(bound))
        or not isinstance(values, list)
        or len(values) != search_sql.sort_key_count(query, plan)
        or not all(_is_scalar(v) for v in values)
        or not _is_int(values[-1])
    ):
        raise BadRequest("invalid cursor")
    return search_sql.Position(plan, bound, tuple(values))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63


def _is_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii() or _encodable(value)
    return _is_int(value) or isinstance(value, float)


def _encodable(text: str) -> bool:
    """JSON can carry lone surrogates; SQLite cannot bind them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
