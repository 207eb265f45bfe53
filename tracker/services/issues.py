"""Issues: create, read, update, soft-delete and restore, list.

Every write is one unit of work on the tenant's writer thread: the issue row,
its links, its search-index entry and its change rows commit together. An
issue's `version` grows with every change to it; `If-Match` (the ETag) makes a
stale write a 412, and a PATCH without it still writes only the fields it names.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from fractional_indexing import generate_key_between

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.custom_fields import FieldDef, apply_values, by_name, changed_by_name
from tracker.domain.ids import new_id
from tracker.domain.models.issues import (
    Issue,
    IssueCreate,
    IssuePatch,
    parse_issue_ref,
)
from tracker.domain.permissions import ProjectRole
from tracker.domain.versions import if_match_ok
from tracker.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from tracker.services import workflow
from tracker.services.access import OrgAccess, ProjectAccess, ProjectRef, read, resolve_project
from tracker.services.assignees import (
    record_assignee_link,
    sync_assignees,
    users_must_see_project,
)
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.custom_fields import field_defs
from tracker.services.runtime import Core
from tracker.services.tags import (
    may_create_tags,
    record_tag_link,
    resolve_tags,
    sync_issue_tags,
)
from tracker.storage import assignees as assignee_sql
from tracker.storage import issues as issue_sql
from tracker.storage import tags as tag_sql
from tracker.storage.issue_shape import COLUMNS
from tracker.storage.search_index import index_issue, unindex_issue

#: Fields a reporter may change on an issue they reported (SPEC §3).
REPORTER_FIELDS = frozenset({"title", "description"})
#: Fields stored as-is in a column of the same name.
PLAIN_FIELDS = ("title", "description", "type", "priority", "due_date", "estimate")


def to_issue(row: sqlite3.Row | Mapping[str, Any], project_key: str, defs: list[FieldDef]) -> Issue:
    """The API shape of a row from `storage.issues.ISSUE_VIEW` (search results reuse it)."""
    return _issue(
        row, project_key, defs, status=row["status"], parent_number=row["parent_number"],
        assignees=json.loads(row["assignee_ids"]), tags=json.loads(row["tag_names"]),
    )  # fmt: skip


def _issue(
    row: sqlite3.Row | Mapping[str, Any],
    project_key: str,
    defs: list[FieldDef],
    *,
    status: str,
    parent_number: int | None,
    assignees: list[str],
    tags: list[str],
) -> Issue:
    """The model from a row: the columns named in `issue_shape.COLUMNS`, the rest here.

    model_validate on a dict: 3x faster than Issue(**kwargs) here (measured), and
    a page of 50 issues spends more time here than in its query."""
    image = {name: row[name] for name in COLUMNS}
    image["key"] = f"{project_key}-{row['number']}"
    image["status"] = status
    image["assignees"] = assignees
    image["tags"] = tags
    image["parent"] = None if parent_number is None else f"{project_key}-{parent_number}"
    image["custom_fields"] = by_name(defs, json.loads(row["custom_fields"])) if defs else {}
    return Issue.model_validate(image)


def _view(conn: sqlite3.Connection, project: ProjectRef, number: int) -> Issue:
    row = issue_sql.issue_view(conn, project.id, number)
    if row is None:
        raise NotFound("issue not found")
    return to_issue(row, project.key, field_defs(conn, project.id))


# --- create -------------------------------------------------------------------------------


async def create_issue(core: Core, access: ProjectAccess, data: IssueCreate, actor: Actor) -> Issue:
    """Number, rank, validate, insert, index and log a new issue in one transaction.

    Held to the rules of an update: below developer only title and description may
    differ from their defaults, and a stage other than the initial one is a move
    from it (transition rules and roles apply, 409/403).
    """
    project = access.project
    assert project.role is not None  # a ProjectAccess is only built for a visible project
    is_reporter = project.role.rank < ProjectRole.DEVELOPER.rank
    if is_reporter:
        _reporter_may_create(data)
    if data.assignees or data.custom_fields:
        await users_must_see_project(core, access, data.assignees, data.custom_fields)
    may_tag = may_create_tags(access)
    return await mutate(
        core, access, actor, lambda uow: create_in(uow, access, data, actor, may_tag)
    )


def create_in(
    uow: UnitOfWork, access: ProjectAccess, data: IssueCreate, actor: Actor, may_tag: bool,
    *, issue_id: str | None = None,
) -> Issue:  # fmt: skip
    """The create itself, inside the caller's unit of work (scripts apply effects with it),
    held to the same rules; the caller has already checked the assignees
    (`users_must_see_project`). `issue_id`: an id made by an offline replica (sync)."""
    project = access.project
    assert project.role is not None  # a ProjectAccess is only built for a visible project
    is_reporter = project.role.rank < ProjectRole.DEVELOPER.rank
    if is_reporter:
        _reporter_may_create(data)
    conn = uow.conn
    stage = _stage(conn, project.id, data.status)
    _check_initial_move(conn, project, stage, is_reporter)
    defs = field_defs(conn, project.id)
    custom = apply_values(defs, {}, data.custom_fields, creating=True)
    parent = _parent(conn, project, data.parent, None)
    row = {
        "id": issue_id or new_id(), "project_id": project.id, "title": data.title,
        "description": data.description, "type": data.type, "priority": data.priority,
        "stage_id": stage["id"], "reporter": actor.user_id, "due_date": data.due_date,
        "sprint_id": _sprint(conn, project.id, data.sprint_id), "estimate": data.estimate,
        "parent_id": None if parent is None else parent["id"],
        "rank": generate_key_between(issue_sql.last_rank(conn, project.id, stage["id"]), None),
        "custom_fields": json.dumps(custom), "created_at": uow.at, "updated_at": uow.at,
        "resolved_at": uow.at if stage["category"] == "done" else None,
        "time_spent": 0, "comment_count": 0, "version": 1,
    }  # fmt: skip
    tags = resolve_tags(uow, project.id, data.tags, may_tag) if data.tags else []
    row["number"] = issue_sql.take_number(conn, project.id)
    issue_sql.insert_issue(conn, row)
    issue = _issue(
        row, project.key, defs, status=stage["name"],
        parent_number=None if parent is None else parent["number"],
        assignees=sorted(data.assignees), tags=sorted((t["name"] for t in tags), key=str.lower),
    )  # fmt: skip
    _record_create(uow, project.id, issue, tags)
    return issue


def _reporter_may_create(data: IssueCreate) -> None:
    """403 unless every field but title and description keeps its default (`status` is
    checked against the initial stage in the transaction); like `_reporter_may`."""
    named = {
        name for name in data.model_fields_set - REPORTER_FIELDS - {"status"}
        if getattr(data, name) != IssueCreate.model_fields[name].get_default(
            call_default_factory=True)
    }  # fmt: skip
    if named:
        fields = ", ".join(sorted(named))
        raise Forbidden(f"reporters may set only the title and description (not {fields})")


def _check_initial_move(
    conn: sqlite3.Connection, project: ProjectRef, stage: sqlite3.Row, is_reporter: bool
) -> None:
    """A new issue starts in the initial stage; any other is a move from there."""
    initial = issue_sql.first_todo_stage(conn, project.id)
    if initial is None or initial["id"] == stage["id"]:
        return
    if is_reporter:
        raise Forbidden("reporters may set only the title and description (not status)")
    assert project.role is not None
    workflow.check_move(conn, project.id, initial["id"], stage["id"], project.role)


def _record_create(uow: UnitOfWork, project_id: str, issue: Issue, tags: list[sqlite3.Row]) -> None:
    """The links, then the create row (full post-image), then one row per link."""
    for tag in tags:
        tag_sql.link_tag(uow.conn, issue.id, tag["id"])
    for user_id in issue.assignees:
        assignee_sql.add_assignee(uow.conn, issue.id, user_id)
    uow.record(Entity.ISSUE, issue.id, Op.CREATE, project=project_id, new=issue.model_dump(),
               version=1, issue=issue.id)  # fmt: skip
    for tag in tags:
        record_tag_link(uow, project_id, issue.id, tag, Op.CREATE, 1)
    for user_id in issue.assignees:
        record_assignee_link(uow, project_id, issue.id, user_id, Op.CREATE, 1)


# --- pieces shared by create and update ---------------------------------------------------


def _stage(conn: sqlite3.Connection, project_id: str, status: str | None) -> sqlite3.Row:
    """The stage named `status`, or the project's first todo stage."""
    stage = (
        issue_sql.first_todo_stage(conn, project_id)
        if status is None
        else issue_sql.stage_named(conn, project_id, status)
    )
    if stage is None:
        raise ValidationFailed([("status", f"no stage named '{status}' in this project")])
    return stage


def _sprint(conn: sqlite3.Connection, project_id: str, sprint_id: str | None) -> str | None:
    if sprint_id is None:
        return None
    state = issue_sql.sprint_state(conn, project_id, sprint_id)
    if state is None:
        raise ValidationFailed([("sprint_id", "no such sprint in this project")])
    if state == "completed":
        raise ValidationFailed([("sprint_id", "the sprint is completed")])
    return sprint_id


def _parent(
    conn: sqlite3.Connection, project: ProjectRef, ref: str | int | None, issue_id: str | None
) -> sqlite3.Row | None:
    """The parent issue: same project (else 422), and never a cycle (409)."""
    if ref is None:
        return None
    key, number = parse_issue_ref(ref)
    if key is not None and key != project.key.upper():
        raise ValidationFailed([("parent", "the parent must be an issue of the same project")])
    parent = issue_sql.issue_by_number(conn, project.id, number)
    if parent is None:
        raise ValidationFailed([("parent", f"no issue {project.key}-{number}")])
    if issue_id is not None and issue_id in issue_sql.ancestors(conn, parent["id"]):
        raise Conflict("that parent would make a cycle of sub-issues")
    return parent


def _apply_status(
    uow: UnitOfWork, access: ProjectAccess, row: sqlite3.Row, status: str,
    before: int | None = None, after: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Columns that move `row` to the stage named `status`, right above issue `before` or
    below issue `after` (else at the end of a new column / in place): transition rules
    (409 rule, 403 role), stage_id, rank and resolved_at (set on entering a `done`
    stage, cleared on leaving one). Decided by tracker.services.workflow.move_card.
    """
    project = access.project
    stage = _stage(uow.conn, project.id, status)
    return workflow.move_card(uow.conn, project, row, stage, before=before, after=after, at=uow.at)


# --- read ---------------------------------------------------------------------------------


async def get_issue(core: Core, access: ProjectAccess, number: int) -> Issue:
    project = access.project
    return await read(core, access, lambda conn: _view(conn, project, number))


async def get_issue_by_key(core: Core, access: OrgAccess, key: str) -> Issue:
    """GET /orgs/{org}/issues/{KEY-N}: 404 unless the caller can see that project."""
    try:
        project_key, number = parse_issue_ref(key)
    except ValueError:
        raise NotFound("issue not found") from None
    if project_key is None:
        raise NotFound("issue not found")
    try:
        project = await resolve_project(core, access.org, project_key, access.user_id)
    except NotFound:
        raise NotFound("issue not found") from None
    if project.role is None:
        raise NotFound("issue not found")
    return await get_issue(core, ProjectAccess(access.user_id, access.org, project), number)


# --- update -------------------------------------------------------------------------------


async def update_issue(
    core: Core, access: ProjectAccess, number: int, patch: IssuePatch, actor: Actor,
    if_match: str | None = None,
) -> Issue:  # fmt: skip
    """Apply the named fields only; a stale If-Match is a 412 and changes nothing."""
    if patch.assignees or patch.custom_fields:
        await users_must_see_project(core, access, patch.assignees, patch.custom_fields)
    may_tag = may_create_tags(access)
    return await mutate(
        core, access, actor,
        lambda uow: update_in(uow, access, number, patch, actor, if_match, may_tag),
    )  # fmt: skip


def update_in(
    uow: UnitOfWork, access: ProjectAccess, number: int, patch: IssuePatch, actor: Actor,
    if_match: str | None, may_tag: bool,
) -> Issue:  # fmt: skip
    """The update itself, inside the caller's unit of work (scripts and previews use it);
    the caller has already checked the assignees (`users_must_see_project`)."""
    project = access.project
    assert project.role is not None  # a ProjectAccess is never built for an invisible project
    row = issue_sql.issue_view(uow.conn, project.id, number)
    if row is None:
        raise NotFound("issue not found")
    if not if_match_ok(if_match, row["version"]):
        raise PreconditionFailed(f"the issue is at version {row['version']}")
    if project.role.rank < ProjectRole.DEVELOPER.rank:
        _reporter_may(row, patch.model_fields_set, actor)
    return _apply_patch(uow, access, row, patch, may_tag)


def _reporter_may(row: sqlite3.Row, named: set[str], actor: Actor) -> None:
    if row["reporter"] != actor.user_id or not named <= REPORTER_FIELDS:
        raise Forbidden("reporters may only edit the title and description of issues they reported")


def _apply_patch(
    uow: UnitOfWork, access: ProjectAccess, row: sqlite3.Row, patch: IssuePatch, may_tag: bool
) -> Issue:
    project = access.project
    conn, named = uow.conn, patch.model_fields_set
    defs = field_defs(conn, project.id)
    before = to_issue(row, project.key, defs).model_dump()
    columns, after = _changed_columns(uow, access, row, patch, defs, before)
    tags = resolve_tags(uow, project.id, patch.tags, may_tag) if "tags" in named else None
    assignees = patch.assignees if "assignees" in named else None
    links_change = (tags is not None and {t["id"] for t in tags} != _tag_ids(conn, row)) or (
        assignees is not None and set(assignees) != set(json.loads(row["assignee_ids"]))
    )
    if not columns and not links_change:
        return to_issue(row, project.key, defs)
    text_changes = "title" in columns or "description" in columns
    if text_changes:
        unindex_issue(conn, row["row_id"])
    version = issue_sql.update_issue(conn, row["id"], columns, uow.at)
    if text_changes:
        index_issue(conn, row["row_id"])
    if tags is not None:
        sync_issue_tags(uow, project.id, row["id"], tags, version)
    if assignees is not None:
        sync_assignees(uow, project.id, row["id"], assignees, version)
    uow.record_fields(Entity.ISSUE, row["id"], project=project.id, before=before, after=after,
                      version=version, issue=row["id"])  # fmt: skip
    return _view(conn, project, row["number"])


def _tag_ids(conn: sqlite3.Connection, row: sqlite3.Row) -> set[str]:
    return {r[0] for r in conn.execute("SELECT tag_id FROM issue_tags WHERE issue_id = ?",
                                       (row["id"],))}  # fmt: skip


def _changed_columns(
    uow: UnitOfWork, access: ProjectAccess, row: sqlite3.Row, patch: IssuePatch,
    defs: list[FieldDef], before: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """(columns to write, API fields after) for the fields the patch names and changes."""
    project = access.project
    named, conn = patch.model_fields_set, uow.conn
    columns: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name in PLAIN_FIELDS:
        if name in named and getattr(patch, name) != row[name]:
            columns[name] = after[name] = getattr(patch, name)
    if "status" in named or patch.before is not None or patch.after is not None:
        status = patch.status or row["status"]
        moved = _apply_status(uow, access, row, status, patch.before, patch.after)
        columns.update(moved)
        if "rank" in moved:  # a card move is logged, so boards elsewhere can follow it
            before["rank"], after["rank"] = row["rank"], moved["rank"]
        if "stage_id" in moved:
            after["status"] = _stage(conn, project.id, status)["name"]
        if "resolved_at" in moved:
            after["resolved_at"] = moved["resolved_at"]
    if "sprint_id" in named and patch.sprint_id != row["sprint_id"]:
        columns["sprint_id"] = after["sprint_id"] = _sprint(conn, project.id, patch.sprint_id)
    if "parent" in named:
        parent = _parent(conn, project, patch.parent, row["id"])
        if (None if parent is None else parent["id"]) != row["parent_id"]:
            columns["parent_id"] = None if parent is None else parent["id"]
            after["parent"] = None if parent is None else f"{project.key}-{parent['number']}"
    if "custom_fields" in named:
        stored = json.loads(row["custom_fields"])
        new = apply_values(defs, stored, patch.custom_fields or {}, creating=False)
        if new != stored:
            columns["custom_fields"] = json.dumps(new)
            after.update(changed_by_name(defs, stored, new, before))
    return columns, after


async def set_issue_tags(
    core: Core, access: ProjectAccess, number: int, tags: list[str], actor: Actor,
    if_match: str | None = None,
) -> Issue:  # fmt: skip
    """PUT .../issues/{n}/tags: the complete set of tag names."""
    return await update_issue(core, access, number, IssuePatch(tags=tags), actor, if_match)


async def set_assignees(
    core: Core, access: ProjectAccess, number: int, user_ids: list[str], actor: Actor,
    if_match: str | None = None,
) -> Issue:  # fmt: skip
    """PUT .../issues/{n}/assignees: the complete set of user ids."""
    return await update_issue(core, access, number, IssuePatch(assignees=user_ids), actor, if_match)


# --- delete and restore -------------------------------------------------------------------


async def delete_issue(
    core: Core, access: ProjectAccess, number: int, actor: Actor, if_match: str | None = None
) -> None:
    """Soft delete: the issue disappears from reads and lists; its number stays taken."""
    await mutate(core, access, actor, lambda uow: delete_in(uow, access, number, if_match))


def delete_in(uow: UnitOfWork, access: ProjectAccess, number: int, if_match: str | None) -> None:
    """The soft delete inside the caller's unit of work (sync push applies it so)."""
    project = access.project
    row = issue_sql.issue_by_number(uow.conn, project.id, number)
    if row is None:
        raise NotFound("issue not found")
    if not if_match_ok(if_match, row["version"]):
        raise PreconditionFailed(f"the issue is at version {row['version']}")
    version = issue_sql.set_deleted(uow.conn, row["id"], uow.at, uow.at, row["rank"])
    uow.record(Entity.ISSUE, row["id"], Op.DELETE, project=project.id,
               new={"deleted_at": uow.at}, version=version, issue=row["id"])  # fmt: skip


async def restore_issue(core: Core, access: ProjectAccess, number: int, actor: Actor) -> Issue:
    """Bring a soft-deleted issue back under its number, at the end of its column."""
    return await mutate(core, access, actor, lambda uow: restore_in(uow, access, number))


def restore_in(uow: UnitOfWork, access: ProjectAccess, number: int) -> Issue:
    """The restore inside the caller's unit of work (sync push applies it so)."""
    project = access.project
    row = issue_sql.issue_by_number(uow.conn, project.id, number, include_deleted=True)
    if row is None:
        raise NotFound("issue not found")
    if row["deleted_at"] is None:
        raise Conflict("the issue is not deleted")
    last = issue_sql.last_rank(uow.conn, project.id, row["stage_id"])
    rank = generate_key_between(last, None)
    version = issue_sql.set_deleted(uow.conn, row["id"], None, uow.at, rank)
    issue = _view(uow.conn, project, number)
    uow.record(Entity.ISSUE, row["id"], Op.RESTORE, project=project.id,
               new=issue.model_dump(), version=version, issue=row["id"])  # fmt: skip
    return issue
