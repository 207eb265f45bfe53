"""Reads of a replica's view for the CLI's fast path (cli/fast.py): sqlite3 and the
storage layer's own SQL, nothing that imports pydantic, typer or the core.

Each function answers as the services would for the replica's person, or returns None
when it cannot be sure (then the CLI runs its typer path, which decides and words any
error): the access rule is `tracker.domain.permissions.effective_project_role` (every
project role may read), people are shown as cli/people.py shows them. Connections
are read-only; the journal's own opening (tracker.replica.store.Journal) would write.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: File names inside a data directory (tracker.settings; tracker.replica.engine).
_SYSTEM_DB, _TENANT_DB, _LOCK = "_system.db", "tracker.db", ".rhythm.lock"


def split_list(value: str) -> list[str]:
    """`a, b,,c` -> ["a", "b", "c"] (tracker.domain.models.issues.split_list)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def journal_meta(replica: Path) -> dict[str, str] | None:
    """org, project, person (what `rhythm clone` set), or None with provisional keys about
    (their display rewriting is cli/offline.py's). Read-only: the journal's own opening
    (tracker.replica.store.Journal) writes its schema and pragmas."""
    with closing(_connect(replica / "replica.db")) as journal:
        if journal.execute("SELECT 1 FROM issue_keys WHERE provisional = 1 LIMIT 1").fetchone():
            return None
        return {r[0]: r[1] for r in journal.execute("SELECT key, value FROM meta")}


def unlocked(view: Path) -> bool:
    """The normal path takes the data directory's lock (a sync or server holds it)."""
    try:
        fd = os.open(view / _LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock
    return True


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


#: The view's system and tenant connections, the project's id and key.
_Opened = tuple[sqlite3.Connection, sqlite3.Connection, str, str]


@contextmanager
def _project(view: Path, org: str, project: str, email: str) -> Iterator[_Opened | None]:
    """The replica view's system and tenant connections with the project's id and key, when
    `email` may read `project` of `org` there; else None (not taken: the typer path decides
    what to say)."""
    with closing(_connect(view / _SYSTEM_DB)) as system:
        tenant_path = _tenant(system, view, org)
        if tenant_path is None:
            yield None
            return
        with closing(_connect(tenant_path)) as tenant:
            access = _can_read(system, tenant, org, project, email)
            if access is None:
                yield None
                return
            _, project_id, project_key = access
            yield system, tenant, project_id, project_key


def _can_read(system: sqlite3.Connection, tenant: sqlite3.Connection, org: str, project: str,
              email: str) -> tuple[str, str, str] | None:  # fmt: skip
    """(user id, project id, project key) when `email` may read the project (decided by
    the services' own rule, `effective_project_role`)."""
    member = _member(system, org, email)
    if member is None:
        return None
    user_id, org_role = member
    found = tenant.execute(
        "SELECT p.id, p.key, p.visibility, m.role AS member_role FROM projects p"
        " LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?"
        " WHERE p.key = ? COLLATE NOCASE AND p.deleted_at IS NULL", (user_id, project),
    ).fetchone()  # fmt: skip
    if found is None:
        return None
    from tracker.domain.roles import OrgRole, ProjectRole, effective_project_role

    member_role = found["member_role"]
    role = effective_project_role(
        OrgRole(org_role), ProjectRole(member_role) if member_role else None, found["visibility"]
    )
    if role is None:  # every project role reads; None is "invisible to them"
        return None
    return user_id, found["id"], found["key"]


def _member(system: sqlite3.Connection, org: str, email: str) -> tuple[str, str] | None:
    """(user id, org role) of the person behind `email` in the org, or None."""
    from tracker.domain.emails import normalize_email

    user = system.execute(
        "SELECT id FROM users WHERE email = ? COLLATE NOCASE", (normalize_email(email),)
    ).fetchone()
    if user is None:
        return None
    row = system.execute(
        "SELECT o.id, m.role FROM orgs o LEFT JOIN org_members m ON m.org_id = o.id"
        " AND m.user_id = ? WHERE o.slug = ? AND o.archived_at IS NULL", (user["id"], org),
    ).fetchone()  # fmt: skip
    if row is None or row["role"] is None:
        return None
    return user["id"], row["role"]


def search_rows(view: Path, org: str, project: str, email: str,
                options: dict[str, Any]) -> tuple[list[dict[str, Any]], bool] | None:  # fmt: skip
    """`issue search` over every project the person sees (cli/search.py `find`, no
    --project): the query language's own SQL (tracker.storage.search), rows in page order."""

    def rows(tenant: sqlite3.Connection, scope: dict[str, str], page: Any) -> Any:
        found = tenant.execute(
            "SELECT i.row_id, i.project_id, i.number, s.name AS status, i.priority, i.type,"
            " i.title, i.updated_at FROM issues i JOIN stages s ON s.id = i.stage_id"
            " WHERE i.row_id IN (SELECT value FROM json_each(?))", (json.dumps(page.row_ids),),
        ).fetchall()  # fmt: skip
        order = {row_id: n for n, row_id in enumerate(page.row_ids)}
        items = [
            dict(row) | {"key": f"{scope[row['project_id']]}-{row['number']}"}
            for row in sorted(found, key=lambda row: order[row["row_id"]])
        ]
        return items, page.next is not None

    return _search(view, org, email, options, rows, ([], False))


def search_json(view: Path, org: str, project: str, email: str,
                options: dict[str, Any]) -> str | None:  # fmt: skip
    """`issue search --json`: `Page[SearchHit]` as the typer path prints it (each issue
    the storage's JSON, `highlight` null, the services' cursor when there is more)."""
    import hashlib

    def render(tenant: sqlite3.Connection, scope: dict[str, str], page: Any) -> str:
        by_row: dict[int, Any] = {}
        for project_id, key in scope.items():  # ?1 is one project's key: a query each
            by_row |= {
                row["row_id"]: row["json"]
                for row in tenant.execute(
                    issue_json_sql() + " WHERE i.project_id = ?2 AND i.row_id IN"
                    " (SELECT value FROM json_each(?3))",
                    (key, project_id, json.dumps(page.row_ids)),
                )
            }  # fmt: skip
        items = [json.loads(by_row[row_id]) | {"highlight": None} for row_id in page.row_ids]
        cursor = None
        if page.next is not None:  # tracker/services/search.py _encode
            q = options["query"].encode("utf-8", "surrogatepass")
            state = {"q": hashlib.sha256(q).hexdigest()[:16], "p": page.next.plan,
                     "b": page.next.bound, "k": list(page.next.values)}  # fmt: skip
            cursor = _b64(json.dumps(state, separators=(",", ":"), allow_nan=False))
        return pretty({"items": items, "next_cursor": cursor})

    return _search(view, org, email, options, render, pretty({"items": [], "next_cursor": None}))


def _b64(text: str) -> str:
    """tracker.domain.models.search `encode_search_cursor`'s encoding."""
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _search(view: Path, org: str, email: str, options: dict[str, Any],
            render: Callable[[sqlite3.Connection, dict[str, str], Any], T],
            empty: T) -> T | None:  # fmt: skip
    """Run the query as the services do (tracker/services/search.py `_search`) and
    `render` its page inside the tenant's connection; None when not sure."""
    from datetime import UTC, datetime

    from tracker.domain.emails import normalize_email
    from tracker.domain.query import parse_query
    from tracker.errors import RhythmError
    from tracker.storage.search import SearchSpec, search
    from tracker.storage.search_filters import FilterContext, emails_in
    from tracker.storage.search_pages import visible_projects

    with closing(_connect(view / _SYSTEM_DB)) as system:
        tenant_path = _tenant(system, view, org)
        member = _member(system, org, email)
        if tenant_path is None or member is None:
            return None
        user_id, org_role = member
        try:
            query = parse_query(options["query"])
        except RhythmError:
            return None
        wanted = sorted(emails_in(query.filters))
        emails = {
            normalize_email(r["email"]): r["id"]
            for r in system.execute(
                "SELECT id, email FROM users WHERE email IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            )
        } if wanted else {}  # fmt: skip
    with closing(_connect(tenant_path)) as tenant:
        see_all = org_role in ("owner", "admin")
        scope = {r["id"]: r["key"] for r in visible_projects(tenant, user_id, see_all)}
        if not scope:
            return empty
        ctx = FilterContext(tuple(scope), user_id, emails, datetime.now(UTC))
        try:
            page = search(tenant, SearchSpec(query, ctx, options["limit"], None))
        except RhythmError:
            return None
        return render(tenant, scope, page)


def _names(system: sqlite3.Connection, people: list[str]) -> dict[str, str]:
    """id -> "Display Name <email>" (cli/people.py names_of)."""
    return {
        r["id"]: f"{r['display_name']} <{r['email']}>" if r["display_name"] else r["email"]
        for r in system.execute(
            "SELECT id, email, display_name FROM users WHERE id IN"
            " (SELECT value FROM json_each(?))", (json.dumps(sorted(set(people))),),
        )
    }  # fmt: skip


def board_columns(view: Path, org: str, project: str, email: str,
                  options: dict[str, Any]) -> list[tuple[str, list[str]]] | None:  # fmt: skip
    """The board's columns in order: ("Stage (count)", ["KEY-n title", ...] by rank), or
    None."""
    from tracker.storage.boards import column_cards, column_counts
    from tracker.storage.stages import list_stages

    with _project(view, org, project, email) as opened:
        if opened is None:
            return None
        _, tenant, project_id, project_key = opened
        counts = column_counts(tenant, project_id)
        columns = [
            (f"{stage['name']} ({counts.get(stage['id'], 0)})",
             [f"{project_key}-{card[1]} {card[2]}"
              for card in column_cards(tenant, project_id, stage["id"], options["limit"])])
            for stage in list_stages(tenant, project_id)
        ]  # fmt: skip
    return columns


def _tenant(system: sqlite3.Connection, view: Path, org: str) -> Path | None:
    row = system.execute(
        "SELECT id FROM orgs WHERE slug = ? AND archived_at IS NULL", (org,)
    ).fetchone()
    path = view / (row["id"] if row else "-") / _TENANT_DB
    return path if row is not None and path.is_file() else None


def list_rows(view: Path, org: str, project: str, email: str,
              options: dict[str, Any]) -> tuple[list[dict[str, Any]], bool] | None:  # fmt: skip
    """The listed issues' table rows and whether there are more, or None (not taken)."""
    with _project(view, org, project, email) as opened:
        if opened is None:
            return None
        system, tenant, project_id, project_key = opened
        page, args, order = _page(project_id, options)
        limit: int = options["limit"]
        rows = tenant.execute(
            "SELECT ?1 || '-' || i.number AS key, s.name AS status, i.priority, i.type,"
            " i.title, i.updated_at, (SELECT json_group_array(user_id) FROM (SELECT user_id"
            " FROM issue_assignees WHERE issue_id = i.id ORDER BY user_id)) AS assignees"
            f" FROM issues i JOIN stages s ON s.id = i.stage_id WHERE i.row_id IN ({page})"
            f" ORDER BY {order}", [project_key, *args, limit + 1],
        ).fetchall()  # fmt: skip
        items = [dict(row) | {"assignees": json.loads(row["assignees"])} for row in rows]
        names = _names(system, [u for item in items[:limit] for u in item["assignees"]])
    for item in items:
        item["assignees"] = ", ".join(
            names.get(u, f"(unknown user {u[:8]})") for u in item["assignees"]
        )
    return items[:limit], len(items) > limit


def _page(project_id: str, options: dict[str, Any]) -> tuple[str, list[Any], str]:
    """The storage's page query for `issue list`'s options: (SQL of the page's row ids,
    its arguments, the ORDER BY)."""
    from tracker.storage.issue_pages import IssueFilter, page_sql

    sort, direction = options.get("sort", "number-desc").split("-")
    filters = IssueFilter(
        statuses=split_list(options.get("status") or ""),
        priorities=split_list(options.get("priority") or ""),
        types=split_list(options.get("type") or ""),
    )
    return page_sql(project_id, filters, sort, direction == "desc", None)


def issue_json_sql() -> str:
    """tracker/storage/issues.py `ISSUE_JSON` (each issue in the API's shape, rendered by
    SQLite), built here from the same pieces; that module also loads the search
    indexer. A test holds the two equal."""
    from tracker.storage.issue_shape import ISSUE_OBJECT

    return f"""
SELECT {ISSUE_OBJECT} AS json, i.*
FROM issues i
JOIN stages s ON s.id = i.stage_id
LEFT JOIN issues par ON par.id = i.parent_id
"""


def list_json(view: Path, org: str, project: str, email: str,
              options: dict[str, Any]) -> str | None:  # fmt: skip
    """`issue list --json`: the page as the typer path prints it (`Page[Issue]`, indented,
    the services' cursor when there is more), or None (not taken)."""
    from tracker.domain.cursors import encode_cursor
    from tracker.storage.issue_pages import sort_key_of

    with _project(view, org, project, email) as opened:
        if opened is None:
            return None
        _, tenant, project_id, project_key = opened
        order_name = options.get("sort", "number-desc")
        sort = order_name.split("-")[0]
        page, args, order = _page(project_id, options)
        limit: int = options["limit"]
        rows = tenant.execute(
            f"{issue_json_sql()} WHERE i.row_id IN ({page}) ORDER BY {order}",
            [project_key, *args, limit + 1],
        ).fetchall()
    more = len(rows) > limit
    cursor = encode_cursor([order_name, *sort_key_of(rows[limit - 1], sort)]) if more else None
    items = [json.loads(row["json"]) for row in rows[:limit]]
    return pretty({"items": items, "next_cursor": cursor})


def pretty(value: Any) -> str:
    """What pydantic's `model_dump_json(indent=2)` prints for plain JSON values (the typer
    path's cli/context.py `print_json`): two-space indents, characters as they are."""
    return json.dumps(value, indent=2, ensure_ascii=False)


#: The `Stage` model's fields in order (tracker/services/workflow.py `to_stage`).
STAGE_FIELDS = ("id", "name", "category", "position", "created_at", "updated_at")


def board_json(view: Path, org: str, project: str, email: str,
               options: dict[str, Any]) -> str | None:  # fmt: skip
    """`board --json`: the `Board` as the typer path prints it, from the storage's own
    column JSON (tracker/services/boards.py `project_board_json`), or None."""
    from tracker.storage.boards import column_counts, column_json
    from tracker.storage.stages import list_stages

    with _project(view, org, project, email) as opened:
        if opened is None:
            return None
        _, tenant, project_id, project_key = opened
        counts = column_counts(tenant, project_id)
        columns = [
            {"stage": {name: stage[name] for name in STAGE_FIELDS},
             "count": counts.get(stage["id"], 0),
             "items": json.loads(column_json(tenant, project_key, project_id, stage["id"],
                                             options["limit"]))}
            for stage in list_stages(tenant, project_id)
        ]  # fmt: skip
    return pretty({"columns": columns})
