"""The mutation registry: what a replica may push, name@v -> handler (docs/sync.md).

Each entry names its REST twin (method and path in the route table) and that
route's permission entry, and its handler applies the change with the SAME
service functions the REST handler uses (`issues.create_in`, `update_in`,
`comments.comment_in`...), inside the push's unit of work, under an access built
by `acting.act_as` with that permission. A test walks this registry against the
route table, as the route walk does for HTTP, so sync is never a laxer door.

A handler runs on the tenant's writer thread; it returns the result fields
(`status` and extras) or raises: a `Rejected` (a sync-specific refusal) or any
RhythmError the services raise (mapped to a rejection code by the push).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from tracker.domain.changes import Actor, Entity
from tracker.domain.ids import is_uuid, utcnow
from tracker.domain.models.base import Input
from tracker.domain.models.comments import CommentIn, CommentPatch, TimeEntryIn
from tracker.domain.models.issues import IssueCreate, IssuePatch, TagIn
from tracker.domain.permissions import Permission
from tracker.domain.sync import CLOCK_TOLERANCE_DAYS
from tracker.domain.text_merge import merge_text
from tracker.errors import Conflict, RhythmError, ValidationFailed
from tracker.services import comments as comment_svc
from tracker.services import issues as issue_svc
from tracker.services import tags as tag_svc
from tracker.services import time_entries as time_svc
from tracker.services.access import ProjectAccess
from tracker.services.assignees import users_must_see_project
from tracker.services.changes import UnitOfWork
from tracker.services.custom_fields import field_defs
from tracker.services.runtime import Core
from tracker.services.sync_keys import rewrite_keys
from tracker.storage import issues as issue_sql
from tracker.storage import sync as sync_sql

Uuid = str


class Rejected(RhythmError):
    """A sync-specific refusal of one mutation (`code` is the result's problem code)."""

    def __init__(self, code: str, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.sync_code, self.sync_status, self.sync_title = code, status, title


def _uuid(value: str, name: str) -> None:
    if not is_uuid(value):
        raise ValidationFailed([(f"args.{name}", "must be a lower-case hyphenated UUID")])


@dataclass(frozen=True)
class Target:
    """Where a mutation lands: the project (key for act_as) and the issue, when any."""

    project_key: str
    issue: sqlite3.Row | None = None
    row: sqlite3.Row | None = None  # the comment/tag a mutation names, when it names one


@dataclass
class Ctx:
    """One mutation being applied: its arguments, access and actor."""

    core: Core
    args: Any
    access: ProjectAccess
    actor: Actor
    client_id: str
    target: Target


Locate = Callable[[sqlite3.Connection, Any], Target]
Prepare = Callable[[Ctx], Awaitable[None]]
Apply = Callable[[Ctx, UnitOfWork], dict[str, Any]]


@dataclass(frozen=True)
class MutationDef:
    name: str
    v: int
    permission: Permission
    rest: tuple[str, str]  # the REST twin: (method, path below /api/v1)
    args: type[BaseModel]
    locate: Locate
    apply: Apply
    prepare: Prepare | None = None
    #: which target states count as "deleted" for this mutation (restore wants them)
    on_deleted: bool = False


# --- locating targets ---------------------------------------------------------------------


def _not_found(what: str) -> Rejected:
    return Rejected(
        "not_found", 404, "Not found", f"{what} not found (or no longer visible to you)"
    )


def _issue_target(conn: sqlite3.Connection, issue_id: str) -> Target:
    _uuid(issue_id, "id")
    row = sync_sql.issue_by_id(conn, issue_id)
    if row is None:
        raise _not_found("issue")
    return Target(str(row["project_key"]), row)


def _project_target(conn: sqlite3.Connection, project_id: str) -> Target:
    _uuid(project_id, "project_id")
    key = sync_sql.project_key_of(conn, project_id)
    if key is None:
        raise _not_found("project")
    return Target(key)


def _live(ctx: Ctx, uow: UnitOfWork) -> sqlite3.Row:
    """The target issue as it is now in this transaction; delete wins over any edit."""
    assert ctx.target.issue is not None
    row = sync_sql.issue_by_id(uow.conn, ctx.target.issue["id"])
    if row is None or row["project_id"] != ctx.access.project.id:
        raise _not_found("issue")
    if row["deleted_at"] is not None:
        key = f"{ctx.access.project.key}-{row['number']}"
        raise Rejected(
            "target_deleted",
            410,
            "Deleted meanwhile",
            f"{key} was deleted at {row['deleted_at']}; your change was not applied",
        )
    return row


def _patch(data: dict[str, Any]) -> IssuePatch:
    try:
        return IssuePatch.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="args.") from None


def _update(ctx: Ctx, uow: UnitOfWork, number: int, patch: IssuePatch) -> None:
    issue_svc.update_in(uow, ctx.access, number, patch, uow.actor, None,
                        tag_svc.may_create_tags(ctx.access))  # fmt: skip


def _with_meta(uow: UnitOfWork, **meta: Any) -> None:
    """Add to the meta every change row of this mutation carries (conflict, merge)."""
    uow.actor = replace(uow.actor, meta={**(uow.actor.meta or {}), **meta})


# --- issue.create -------------------------------------------------------------------------


class IssueCreateArgs(Input):
    model_config = Input.model_config | {"strict": False}

    id: Uuid = Field(min_length=36, max_length=36)
    project_id: Uuid = Field(min_length=36, max_length=36)
    title: str
    description: str = ""
    type: str = "task"
    priority: str = "normal"
    status: str | None = None
    assignees: list[str] = Field(default_factory=list, max_length=50)
    tags: list[str] = Field(default_factory=list, max_length=50)
    sprint_id: str | None = None
    parent_id: Uuid | None = None
    due_date: str | None = None
    estimate: int | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict, max_length=100)


def _parent_number(conn: sqlite3.Connection, project_id: str, parent_id: str | None) -> int | None:
    if parent_id is None:
        return None
    _uuid(parent_id, "parent_id")
    parent = sync_sql.issue_by_id(conn, parent_id)
    if parent is None or parent["project_id"] != project_id or parent["deleted_at"] is not None:
        raise ValidationFailed([("args.parent_id", "no such issue in this project")])
    return int(parent["number"])


def _create_data(args: IssueCreateArgs, parent: int | None) -> IssueCreate:
    fields = args.model_dump(exclude={"id", "project_id", "parent_id"}, exclude_unset=True)
    if parent is not None:
        fields["parent"] = parent
    try:
        return IssueCreate.model_validate(fields)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="args.") from None


async def _prepare_create(ctx: Ctx) -> None:
    args: IssueCreateArgs = ctx.args
    if args.assignees or args.custom_fields:
        await users_must_see_project(ctx.core, ctx.access, args.assignees, args.custom_fields)


def _apply_create(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: IssueCreateArgs = ctx.args
    _uuid(args.id, "id")
    if sync_sql.exists(uow.conn, "issues", args.id):
        raise Rejected("id_conflict", 409, "Id in use", "an issue with that id already exists")
    if args.description:
        args = args.model_copy(
            update={"description": rewrite_keys(uow.conn, ctx.client_id, args.description)}
        )
    data = _create_data(args, _parent_number(uow.conn, ctx.access.project.id, args.parent_id))
    issue = issue_svc.create_in(uow, ctx.access, data, uow.actor,
                                tag_svc.may_create_tags(ctx.access), issue_id=args.id)  # fmt: skip
    return {"status": "applied", "assigned": {"number": issue.number, "key": issue.key}}


# --- issue.update -------------------------------------------------------------------------

UPDATABLE = ("title", "type", "priority", "due_date", "estimate", "sprint_id", "parent_id",
             "custom_fields")  # fmt: skip


class IssueUpdateArgs(Input):
    model_config = Input.model_config | {"strict": False}

    id: Uuid = Field(min_length=36, max_length=36)
    set: dict[str, Any] = Field(min_length=1, max_length=20)
    base: dict[str, Any] = Field(default_factory=dict, max_length=20)


def _conflict(
    uow: UnitOfWork, issue_id: str, field: str, base: Any, current: Any
) -> dict[str, Any]:
    last = sync_sql.last_change_of(uow.conn, Entity.ISSUE, issue_id, field)
    return {
        "field": field, "base": base, "overwritten": current,
        "overwritten_by": None if last is None else last["actor"],
        "overwritten_at": None if last is None else last["at"],
        "overwritten_seq": None if last is None else last["seq"],
    }  # fmt: skip


def _apply_update(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: IssueUpdateArgs = ctx.args
    unknown = sorted(set(args.set) - set(UPDATABLE))
    if unknown:
        raise ValidationFailed([(f"args.set.{name}", "not a field issue.update sets")
                                for name in unknown])  # fmt: skip
    row = _live(ctx, uow)
    project = ctx.access.project
    defs = field_defs(uow.conn, project.id)
    view = issue_sql.issue_view(uow.conn, project.id, row["number"])
    assert view is not None
    current_custom = issue_svc.to_issue(view, project.key, defs).custom_fields
    patch: dict[str, Any] = {}
    conflicts: list[dict[str, Any]] = []
    for name, wanted in args.set.items():
        if name == "custom_fields":
            if not isinstance(wanted, dict):
                raise ValidationFailed([("args.set.custom_fields", "must be an object")])
            bases = args.base.get("custom_fields") or {}
            changed = {}
            for field, value in wanted.items():
                current = current_custom.get(field)
                if current == value:
                    continue
                if field in bases and bases[field] != current:
                    conflicts.append(_conflict(uow, row["id"], field, bases[field], current))
                changed[field] = value
            if changed:
                patch["custom_fields"] = changed
            continue
        current = row[name]
        if current == wanted:
            continue
        if name in args.base and args.base[name] != current:
            field = "parent" if name == "parent_id" else name
            conflicts.append(_conflict(uow, row["id"], field, args.base[name], current))
        if name == "parent_id":
            patch["parent"] = _parent_number(uow.conn, project.id, wanted)
        else:
            patch[name] = wanted
    if not patch:
        return {"status": "noop"}
    if conflicts:
        _with_meta(uow, conflict=conflicts)
    _update(ctx, uow, row["number"], _patch(patch))
    if conflicts:
        return {"status": "conflict_applied", "conflicts": conflicts}
    return {"status": "applied"}


# --- issue.set_status ---------------------------------------------------------------------


class SetStatusArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)
    from_stage: Uuid = Field(min_length=36, max_length=36)
    to_stage: Uuid = Field(min_length=36, max_length=36)


def _apply_status(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: SetStatusArgs = ctx.args
    row = _live(ctx, uow)
    project = ctx.access.project
    target = sync_sql.stage_of_project(uow.conn, project.id, args.to_stage)
    if target is None:
        raise ValidationFailed([("args.to_stage", "no such stage in this project")])
    if row["stage_id"] == args.to_stage:
        return {"status": "noop"}
    if row["stage_id"] != args.from_stage:
        current = sync_sql.stage_of_project(uow.conn, project.id, row["stage_id"])
        name = "?" if current is None else current["name"]
        last = sync_sql.last_change_of(uow.conn, Entity.ISSUE, row["id"], "status")
        who = "" if last is None else f" ({last['actor']}, {last['at']})"
        raise Rejected("stale_transition", 409, "Status changed meanwhile",
                       f"{project.key}-{row['number']} is {name}{who}; your move assumed "
                       "another stage", current=row["stage_id"], current_name=name)  # fmt: skip
    try:
        _update(ctx, uow, row["number"], _patch({"status": target["name"]}))
    except Conflict as exc:
        raise Rejected("transition_forbidden", 409, "Transition not allowed", exc.detail) from None
    return {"status": "applied"}


# --- issue.set_description and comment.edit (3-way merge) ---------------------------------


class TextArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)
    base: str = Field(max_length=200_000)
    text: str = Field(max_length=200_000)


def _merged(
    uow: UnitOfWork, base: str, current: str, mine: str
) -> tuple[dict[str, Any], str | None]:
    """(result fields, text to store or None) of a 3-way text merge."""
    outcome, text = merge_text(base, current, mine)
    if outcome == "noop":
        return {"status": "noop"}, None
    if outcome == "kept_both":
        draft = {"base": base, "text": mine, "current": current}
        return {"status": "kept_both", "draft": draft}, None
    if outcome == "merged":
        _with_meta(uow, merge="clean")
    return {"status": outcome}, text


def _apply_description(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: TextArgs = ctx.args
    row = _live(ctx, uow)
    base, mine = (rewrite_keys(uow.conn, ctx.client_id, t) for t in (args.base, args.text))
    result, text = _merged(uow, base, row["description"], mine)
    if text is not None:
        _update(ctx, uow, row["number"], _patch({"description": text}))
    return result


class CommentEditArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)
    base: str = Field(max_length=100_000)
    body: str = Field(max_length=100_000)


def _comment_target(conn: sqlite3.Connection, args: Any) -> Target:
    _uuid(args.id, "id")
    row = sync_sql.comment_by_id(conn, args.id)
    if row is None:
        raise _not_found("comment")
    issue = sync_sql.issue_by_id(conn, row["issue_id"])
    return Target(str(row["project_key"]), issue, row)


def _apply_comment_edit(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: CommentEditArgs = ctx.args
    row = _live(ctx, uow)
    comment = sync_sql.comment_by_id(uow.conn, args.id)
    if comment is None:
        raise Rejected("target_deleted", 410, "Deleted meanwhile", "the comment was deleted")
    base, mine = (rewrite_keys(uow.conn, ctx.client_id, t) for t in (args.base, args.body))
    result, text = _merged(uow, base, comment["body"], mine)
    if text is not None:
        try:
            patch = CommentPatch(body=text)
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc, prefix="args.") from None
        comment_svc.update_comment_in(uow, ctx.access, row["number"], args.id, patch, None,
                                      uow.actor)  # fmt: skip
    return result


# --- links: assignees and tags ------------------------------------------------------------


class SetOpsArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)
    add: list[str] = Field(default_factory=list, max_length=50)
    remove: list[str] = Field(default_factory=list, max_length=50)


async def _prepare_assignees(ctx: Ctx) -> None:
    if ctx.args.add:
        await users_must_see_project(ctx.core, ctx.access, ctx.args.add, None)


def _apply_assignees(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: SetOpsArgs = ctx.args
    row = _live(ctx, uow)
    view = issue_sql.issue_view(uow.conn, ctx.access.project.id, row["number"])
    assert view is not None
    current = set(json.loads(view["assignee_ids"]))
    wanted = (current | set(args.add)) - set(args.remove)
    if wanted == current:
        return {"status": "noop"}
    _update(ctx, uow, row["number"], _patch({"assignees": sorted(wanted)}))
    return {"status": "applied"}


def _apply_tags(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: SetOpsArgs = ctx.args
    row = _live(ctx, uow)
    project = ctx.access.project
    aliases = sync_sql.aliases(uow.conn, ctx.client_id)
    add = [aliases.get(t, t) for t in args.add]
    remove = {aliases.get(t, t) for t in args.remove}
    names = sync_sql.tags_by_ids(uow.conn, project.id, add)
    missing = [t for t in add if t not in names]
    if missing:
        raise ValidationFailed([("args.add", f"no tag {t} in this project") for t in missing])
    current = {r[0]: r[1] for r in uow.conn.execute(
        "SELECT t.id, t.name FROM issue_tags it JOIN tags t ON t.id = it.tag_id "
        "WHERE it.issue_id = ?", (row["id"],))}  # fmt: skip
    wanted = {**current, **names}
    for tag_id in remove:
        wanted.pop(tag_id, None)
    if set(wanted) == set(current):
        return {"status": "noop"}
    _update(ctx, uow, row["number"], _patch({"tags": sorted(wanted.values(), key=str.lower)}))
    return {"status": "applied"}


# --- delete / restore ---------------------------------------------------------------------


class IdArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)


def _apply_delete(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    assert ctx.target.issue is not None
    row = sync_sql.issue_by_id(uow.conn, ctx.target.issue["id"])
    if row is None or row["deleted_at"] is not None:
        return {"status": "noop"}
    issue_svc.delete_in(uow, ctx.access, row["number"], None)
    return {"status": "applied"}


def _apply_restore(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    assert ctx.target.issue is not None
    row = sync_sql.issue_by_id(uow.conn, ctx.target.issue["id"])
    if row is None or row["deleted_at"] is None:
        return {"status": "noop"}
    issue_svc.restore_in(uow, ctx.access, row["number"])
    return {"status": "applied"}


# --- comments -----------------------------------------------------------------------------


class CommentCreateArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)
    issue_id: Uuid = Field(min_length=36, max_length=36)
    body: str = Field(max_length=100_000)


def _apply_comment(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: CommentCreateArgs = ctx.args
    _uuid(args.id, "id")
    row = _live(ctx, uow)
    if sync_sql.exists(uow.conn, "comments", args.id):
        raise Rejected("id_conflict", 409, "Id in use", "a comment with that id already exists")
    try:
        body = CommentIn(body=rewrite_keys(uow.conn, ctx.client_id, args.body))
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="args.") from None
    comment_svc.comment_in(uow, ctx.access, row["number"], body, uow.actor, comment_id=args.id)
    return {"status": "applied"}


def _comment_delete_target(conn: sqlite3.Connection, args: Any) -> Target:
    _uuid(args.id, "id")
    row = sync_sql.comment_by_id(conn, args.id)
    if row is None:  # already gone: deleting is idempotent
        raise _AlreadyDone()
    issue = sync_sql.issue_by_id(conn, row["issue_id"])
    return Target(str(row["project_key"]), issue, row)


class _AlreadyDone(Exception):
    """The mutation's effect already holds and its target is gone: answer `noop`."""


def _apply_comment_delete(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    row = _live(ctx, uow)
    if sync_sql.comment_by_id(uow.conn, ctx.args.id) is None:
        return {"status": "noop"}
    comment_svc.delete_comment_in(uow, ctx.access, row["number"], ctx.args.id, uow.actor)
    return {"status": "applied"}


# --- time entries -------------------------------------------------------------------------


class TimeEntryArgs(Input):
    model_config = Input.model_config | {"strict": False}

    id: Uuid = Field(min_length=36, max_length=36)
    issue_id: Uuid = Field(min_length=36, max_length=36)
    seconds_spent: int
    description: str = ""
    logged_at: str | None = None


def _apply_time(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: TimeEntryArgs = ctx.args
    _uuid(args.id, "id")
    row = _live(ctx, uow)
    if sync_sql.exists(uow.conn, "time_entries", args.id):
        raise Rejected("id_conflict", 409, "Id in use", "a time entry with that id already exists")
    try:
        data = TimeEntryIn.model_validate(
            args.model_dump(exclude={"id", "issue_id"}, exclude_unset=True), strict=False
        )
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="args.") from None
    if data.logged_at is not None:
        today = utcnow().date()
        day = data.logged_at.date()
        if day > today + timedelta(days=CLOCK_TOLERANCE_DAYS):
            raise Rejected("clock", 422, "Date in the future",
                           f"time logged for {day.isoformat()} is after the server's "
                           f"tomorrow ({today.isoformat()} + 1 day); check your clock",
                           server_date=today.isoformat())  # fmt: skip
    time_svc.log_time_in(uow, ctx.access, row["number"], data, uow.actor, entry_id=args.id)
    return {"status": "applied"}


# --- tags ---------------------------------------------------------------------------------


class TagCreateArgs(Input):
    model_config = Input.model_config | {"strict": False}

    id: Uuid = Field(min_length=36, max_length=36)
    project_id: Uuid = Field(min_length=36, max_length=36)
    name: str
    color: str | None = None


def _apply_tag(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: TagCreateArgs = ctx.args
    _uuid(args.id, "id")
    try:
        data = TagIn(name=args.name, color=args.color)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="args.") from None
    same = sync_sql.tag_named(uow.conn, ctx.access.project.id, data.name)
    if same is not None:
        if same["id"] != args.id:
            sync_sql.add_alias(uow.conn, ctx.client_id, args.id, same["id"])
        return {"status": "noop", "alias": {"requested": args.id, "actual": same["id"]}}
    if sync_sql.exists(uow.conn, "tags", args.id):
        raise Rejected("id_conflict", 409, "Id in use", "a tag with that id already exists")
    tag_svc.create_tag_in(uow, ctx.access, data, tag_id=args.id)
    return {"status": "applied"}


# --- the registry -------------------------------------------------------------------------

_ISSUE = "/orgs/{org}/projects/{project}/issues/{n}"


def _by_issue_id(conn: sqlite3.Connection, args: Any) -> Target:
    return _issue_target(conn, args.id)


def _by_issue_ref(conn: sqlite3.Connection, args: Any) -> Target:
    return _issue_target(conn, args.issue_id)


def _by_project(conn: sqlite3.Connection, args: Any) -> Target:
    return _project_target(conn, args.project_id)


_DEFS = (
    MutationDef("issue.create", 1, Permission.ISSUE_CREATE,
                ("POST", "/orgs/{org}/projects/{project}/issues"), IssueCreateArgs,
                _by_project, _apply_create, _prepare_create),
    MutationDef("issue.update", 1, Permission.ISSUE_CREATE, ("PATCH", _ISSUE), IssueUpdateArgs,
                _by_issue_id, _apply_update),
    MutationDef("issue.set_status", 1, Permission.ISSUE_CREATE, ("PATCH", _ISSUE), SetStatusArgs,
                _by_issue_id, _apply_status),
    MutationDef("issue.set_description", 1, Permission.ISSUE_CREATE, ("PATCH", _ISSUE), TextArgs,
                _by_issue_id, _apply_description),
    MutationDef("issue.assignees", 1, Permission.ISSUE_UPDATE, ("PUT", _ISSUE + "/assignees"),
                SetOpsArgs, _by_issue_id, _apply_assignees, _prepare_assignees),
    MutationDef("issue.tags", 1, Permission.ISSUE_UPDATE, ("PUT", _ISSUE + "/tags"), SetOpsArgs,
                _by_issue_id, _apply_tags),
    MutationDef("issue.delete", 1, Permission.ISSUE_DELETE, ("DELETE", _ISSUE), IdArgs,
                _by_issue_id, _apply_delete, on_deleted=True),
    MutationDef("issue.restore", 1, Permission.ISSUE_DELETE, ("POST", _ISSUE + "/restore"),
                IdArgs, _by_issue_id, _apply_restore, on_deleted=True),
    MutationDef("comment.create", 1, Permission.COMMENT_CREATE, ("POST", _ISSUE + "/comments"),
                CommentCreateArgs, _by_issue_ref, _apply_comment),
    MutationDef("comment.edit", 1, Permission.COMMENT_CREATE,
                ("PATCH", _ISSUE + "/comments/{comment_id}"), CommentEditArgs, _comment_target,
                _apply_comment_edit),
    MutationDef("comment.delete", 1, Permission.COMMENT_CREATE,
                ("DELETE", _ISSUE + "/comments/{comment_id}"), IdArgs, _comment_delete_target,
                _apply_comment_delete),
    MutationDef("time_entry.create", 1, Permission.TIME_LOG,
                ("POST", _ISSUE + "/time-entries"), TimeEntryArgs, _by_issue_ref, _apply_time),
    MutationDef("tag.create", 1, Permission.TAG_CREATE,
                ("POST", "/orgs/{org}/projects/{project}/tags"), TagCreateArgs, _by_project,
                _apply_tag),
)  # fmt: skip

#: name@v -> definition. An unknown pair is `deferred` by the push (not consumed).
REGISTRY: dict[tuple[str, int], MutationDef] = {(d.name, d.v): d for d in _DEFS}
AlreadyDone = _AlreadyDone
