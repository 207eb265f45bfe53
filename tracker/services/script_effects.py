"""What a script run reads and writes, on the tenant's thread, through the API's own rules.

Reads (`ctx.project:issues`, `ctx.project:issue`) answer with the Issue shape of
the issue endpoints, confined to the script's project and row-capped. Writes
arrive as plain data (`effects`) and are applied here inside ONE unit of work
with the same service functions the API uses (`issues.update_in`,
`issues.create_in`, `comments.comment_in`, the same assignee visibility check),
under the script's access: a forbidden transition or an unknown user raises the
same error an API call would, and the caller rolls the whole run back.

Everything here is synchronous and takes the connection of the unit it runs
in, so a preview can call it inside its rolled-back transaction. The system
database (people, org roles) has its own thread and is reached through the
`SystemRead` bridge the caller provides.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from tracker.domain.ids import utcnow
from tracker.domain.models.comments import CommentIn
from tracker.domain.models.issues import IssueCreate, IssuePatch, parse_issue_ref
from tracker.domain.query import parse_query
from tracker.errors import NotFound, RhythmError, ValidationFailed
from tracker.services import script_email
from tracker.services.access import ProjectAccess
from tracker.services.assignees import users_must_see_project_in
from tracker.services.changes import Actor, UnitOfWork
from tracker.services.comments import comment_in
from tracker.services.custom_fields import field_defs
from tracker.services.issues import create_in, to_issue, update_in
from tracker.services.tags import may_create_tags
from tracker.storage import assignees as assignee_sql
from tracker.storage import issues as issue_sql
from tracker.storage import search as search_sql
from tracker.storage import search_pages
from tracker.storage import tags as tag_sql
from tracker.storage import users as user_sql
from tracker.storage.search_filters import FilterContext, emails_in

T = TypeVar("T")
#: Runs fn(system connection) on the system database's thread and returns its result.
SystemRead = Callable[[Callable[[sqlite3.Connection], T]], T]

DEFAULT_ROWS, MAX_ROWS = 50, 200
LIST_FIELDS = ("assignees", "tags")


class EffectRefused(Exception):
    """A script's change was refused by the rules an API call obeys; the run fails with
    this message (never an HTTP answer: it is recorded in the run log)."""


@dataclass(frozen=True)
class ScriptScope:
    """Who the run acts as, where, and how it reaches the system database."""

    org_id: str
    access: ProjectAccess  # the script's rights in its project (see script_runs.script_access)
    actor: Actor
    system_read: SystemRead[Any]
    script_name: str = ""
    mail_on: bool = False  # the server sends email (ctx.email is refused otherwise)


# --- reads --------------------------------------------------------------------------------


def answer_read(conn: sqlite3.Connection, scope: ScriptScope, message: dict[str, Any]) -> Any:
    """Answer one read request of a running script (`{"read", "arg", "limit"}`)."""
    kind, arg = message.get("read"), message.get("arg")
    if kind == "issue" and isinstance(arg, str):
        number = _number_in_project(scope, arg)
        row = issue_sql.issue_view(conn, scope.access.project.id, number)
        return None if row is None else _issue_dict(conn, scope, row)
    if kind == "issues" and isinstance(arg, str):
        limit = message.get("limit") or DEFAULT_ROWS
        return search_issues(conn, scope, arg, max(1, min(int(limit), MAX_ROWS)))
    raise ValueError("unknown read")


def search_issues(
    conn: sqlite3.Connection, scope: ScriptScope, q: str, limit: int
) -> list[dict[str, Any]]:
    """The §5 query language over the script's project only."""
    query = parse_query(q)
    wanted = sorted(emails_in(query.filters))
    emails = (
        {
            r["email"].lower(): r["id"]
            for r in scope.system_read(lambda c: user_sql.users_by_email(c, wanted))
        }
        if wanted
        else {}
    )
    project = scope.access.project
    ctx = FilterContext((project.id,), scope.actor.user_id, emails, utcnow())
    page = search_sql.search(conn, search_sql.SearchSpec(query, ctx, limit, None))
    defs = field_defs(conn, project.id)
    return [
        to_issue(row, project.key, defs).model_dump()
        for row in search_pages.issue_rows(conn, page.row_ids)
    ]


def _issue_dict(conn: sqlite3.Connection, scope: ScriptScope, row: sqlite3.Row) -> dict[str, Any]:
    project = scope.access.project
    return to_issue(row, project.key, field_defs(conn, project.id)).model_dump()


def issue_by_id(
    conn: sqlite3.Connection, scope: ScriptScope, issue_id: str
) -> dict[str, Any] | None:
    """`ctx.issue` of an event run: the issue as it is now (None if gone)."""
    row = conn.execute(
        "SELECT number FROM issues WHERE id = ? AND project_id = ?",
        (issue_id, scope.access.project.id),
    ).fetchone()
    if row is None:
        return None
    view = issue_sql.issue_view(conn, scope.access.project.id, row[0])
    return None if view is None else _issue_dict(conn, scope, view)


def issue_by_key(conn: sqlite3.Connection, scope: ScriptScope, key: str) -> dict[str, Any]:
    """`ctx.issue` of a manual run on a named issue (404 when absent)."""
    row = issue_sql.issue_view(conn, scope.access.project.id, _number_in_project(scope, key))
    if row is None:
        raise NotFound("issue not found")
    return _issue_dict(conn, scope, row)


def _number_in_project(scope: ScriptScope, key: str) -> int:
    try:
        project_key, number = parse_issue_ref(key)
    except ValueError as exc:
        raise ValueError(f"not an issue key: {key}") from exc
    if project_key is not None and project_key != scope.access.project.key.upper():
        raise ValueError("scripts may only read and change issues of their own project")
    return number


# --- writes -------------------------------------------------------------------------------


def apply_effects(uow: UnitOfWork, scope: ScriptScope, effects: list[dict[str, Any]]) -> None:
    """Apply every effect in order inside `uow`; the first refusal raises EffectRefused."""
    if script_email.emails_in(effects) > script_email.MAX_EMAILS:
        limit = script_email.MAX_EMAILS
        raise EffectRefused(f"ctx.email refused: more than {limit} emails in one run")
    for effect in effects:
        try:
            _apply(uow, scope, effect)
        except (RhythmError, ValidationError, ValueError) as exc:
            raise EffectRefused(_explain(effect, exc)) from exc


def _apply(uow: UnitOfWork, scope: ScriptScope, effect: dict[str, Any]) -> None:
    kind, access, actor = effect.get("kind"), scope.access, scope.actor
    may_tag = may_create_tags(access)
    if kind == "create":
        data = IssueCreate.model_validate(_people(uow.conn, scope, _fields(effect)))
        _check_people(uow.conn, scope, data.assignees, data.custom_fields)
        create_in(uow, access, data, actor, may_tag)
        return
    if kind == "email":
        script_email.queue_email(uow, scope, effect)
        return
    number = _number_in_project(scope, str(effect.get("issue")))
    if kind == "update":
        patch = IssuePatch.model_validate(_people(uow.conn, scope, _fields(effect)))
        _check_people(
            uow.conn,
            scope,
            patch.assignees if "assignees" in patch.model_fields_set else None,
            patch.custom_fields,
        )
        update_in(uow, access, number, patch, actor, None, may_tag)
    elif kind == "comment":
        comment_in(uow, access, number, CommentIn(body=str(effect.get("body"))), actor)
    elif kind == "tag":
        row = issue_sql.issue_by_number(uow.conn, access.project.id, number)
        if row is None:
            raise NotFound("issue not found")
        names = [t["name"] for t in tag_sql.tags_of_issue(uow.conn, row["id"])]
        name = str(effect.get("name"))
        if name.lower() not in {n.lower() for n in names}:
            patch = IssuePatch(tags=[*names, name])
            update_in(uow, access, number, patch, actor, None, may_tag)
    else:
        raise ValueError(f"unknown change kind {kind!r}")


def _fields(effect: dict[str, Any]) -> dict[str, Any]:
    fields = effect.get("fields")
    fields = dict(fields) if isinstance(fields, dict) else {}
    for name in LIST_FIELDS:  # an empty Lua table is {} on this side
        if fields.get(name) == {}:
            fields[name] = []
    return fields


def _people(conn: sqlite3.Connection, scope: ScriptScope, fields: dict[str, Any]) -> dict[str, Any]:
    """Scripts may name assignees by email; the API takes ids. Unknown emails are refused."""
    assignees = fields.get("assignees")
    if not isinstance(assignees, list):
        return fields
    emails = sorted({a.lower() for a in assignees if isinstance(a, str) and "@" in a})
    if not emails:
        return fields
    rows = scope.system_read(lambda c: user_sql.users_by_email(c, emails))
    known = {r["email"].lower(): r["id"] for r in rows}
    unknown = [e for e in emails if e not in known]
    if unknown:
        raise ValidationFailed([("assignees", f"unknown user: {e}") for e in unknown])
    resolved = [known.get(a.lower(), a) if isinstance(a, str) else a for a in assignees]
    return {**fields, "assignees": resolved}


def _check_people(
    conn: sqlite3.Connection,
    scope: ScriptScope,
    assignees: list[str] | None,
    custom: dict[str, Any] | None,
) -> None:
    if not assignees and not custom:
        return
    org_id = scope.org_id

    def org_roles_of(ids: list[str]) -> dict[str, str]:
        return scope.system_read(lambda c: assignee_sql.org_member_roles(c, org_id, ids))

    users_must_see_project_in(conn, scope.access, assignees, custom, org_roles_of)


def _explain(effect: dict[str, Any], exc: Exception) -> str:
    where = f"line {effect['line']}: " if isinstance(effect.get("line"), int) else ""
    what = {
        "update": "issue:update",
        "comment": "issue:add_comment",
        "tag": "issue:add_tag",
        "create": "project:create_issue",
        "email": "ctx.email",
    }.get(str(effect.get("kind")), "a change")
    target = f" on {effect['issue']}" if effect.get("issue") else ""
    if isinstance(exc, ValidationError):
        reason = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
    elif isinstance(exc, RhythmError):
        reason = exc.detail
    else:
        reason = str(exc)
    return f"{where}{what}{target} refused: {reason}"
