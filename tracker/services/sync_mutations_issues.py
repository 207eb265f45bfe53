"""Sync mutations on issues themselves: create, update (per-field bases), set_status
(compare-and-set), set_description (3-way merge), assignees, tags, delete, restore.
Each applies the change with the issue service's own functions (docs/sync.md)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from pydantic import Field, ValidationError

from tracker.domain.changes import Entity
from tracker.domain.models.base import Input
from tracker.domain.models.issues import IssueCreate
from tracker.domain.permissions import Permission
from tracker.errors import Conflict, ValidationFailed
from tracker.services import issues as issue_svc
from tracker.services import tags as tag_svc
from tracker.services.assignees import users_must_see_project
from tracker.services.changes import UnitOfWork
from tracker.services.custom_fields import field_defs
from tracker.services.sync_keys import rewrite_keys
from tracker.services.sync_mutation_base import (
    ISSUE_PATH,
    Ctx,
    IdArgs,
    MutationDef,
    Rejected,
    Uuid,
    add_meta,
    by_issue_id,
    by_project,
    check_uuid,
    issue_patch,
    live_issue,
    merged,
    update_issue,
)
from tracker.storage import issues as issue_sql
from tracker.storage import sync as sync_sql

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
    check_uuid(parent_id, "parent_id")
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
    check_uuid(args.id, "id")
    if sync_sql.exists(uow.conn, "issues", args.id):
        raise Rejected("id_conflict", 409, "Id in use", "an issue with that id already exists")
    if args.description:
        args = args.model_copy(
            update={"description": rewrite_keys(uow.conn, ctx.client_id, args.description)}
        )
    data = _create_data(args, _parent_number(uow.conn, ctx.access.project.id, args.parent_id))
    issue = issue_svc.create_in(
        uow, ctx.access, data, uow.actor, tag_svc.may_create_tags(ctx.access), issue_id=args.id
    )
    return {"status": "applied", "assigned": {"number": issue.number, "key": issue.key}}


# --- issue.update -------------------------------------------------------------------------

UPDATABLE = (
    "title",
    "type",
    "priority",
    "due_date",
    "estimate",
    "sprint_id",
    "parent_id",
    "custom_fields",
)


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
        "field": field,
        "base": base,
        "overwritten": current,
        "overwritten_by": None if last is None else last["actor"],
        "overwritten_at": None if last is None else last["at"],
        "overwritten_seq": None if last is None else last["seq"],
    }


async def _prepare_update(ctx: Ctx) -> None:
    """`user` custom field values must see the project, as REST PATCH checks them."""
    args: IssueUpdateArgs = ctx.args
    custom = args.set.get("custom_fields")
    if isinstance(custom, dict) and custom:
        await users_must_see_project(ctx.core, ctx.access, None, custom)


def _apply_update(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: IssueUpdateArgs = ctx.args
    unknown = sorted(set(args.set) - set(UPDATABLE))
    if unknown:
        raise ValidationFailed(
            [(f"args.set.{name}", "not a field issue.update sets") for name in unknown]
        )
    row = live_issue(ctx, uow)
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
            raw_bases = args.base.get("custom_fields") or {}
            if not isinstance(raw_bases, dict):
                raise ValidationFailed([("args.base.custom_fields", "must be an object")])
            # names match case-insensitively, as in REST (domain.custom_fields.apply_values)
            canonical = {d.name.lower(): d.name for d in defs}
            bases = {canonical.get(k.lower(), k): v for k, v in raw_bases.items()}
            changed = {}
            for given, value in wanted.items():
                field = canonical.get(str(given).lower(), str(given))
                current = current_custom.get(field)
                if current == value:
                    continue
                if field in bases and bases[field] != current:
                    # logged as `custom_fields.<name>` (issues.update_in, changed_by_name)
                    conflicts.append(_conflict(uow, row["id"], f"custom_fields.{field}",
                                               bases[field], current))  # fmt: skip
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
        add_meta(uow, conflict=conflicts)
    update_issue(ctx, uow, row["number"], issue_patch(patch))
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
    row = live_issue(ctx, uow)
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
        raise Rejected(
            "stale_transition",
            409,
            "Status changed meanwhile",
            f"{project.key}-{row['number']} is {name}{who}; your move assumed another stage",
            current=row["stage_id"],
            current_name=name,
        )
    try:
        update_issue(ctx, uow, row["number"], issue_patch({"status": target["name"]}))
    except Conflict as exc:
        raise Rejected("transition_forbidden", 409, "Transition not allowed", exc.detail) from None
    return {"status": "applied"}


# --- issue.set_description and comment.edit (3-way merge) ---------------------------------


class TextArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)
    base: str = Field(max_length=200_000)
    text: str = Field(max_length=200_000)


def _apply_description(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: TextArgs = ctx.args
    row = live_issue(ctx, uow)
    base, mine = (rewrite_keys(uow.conn, ctx.client_id, t) for t in (args.base, args.text))
    result, text = merged(uow, base, row["description"], mine)
    if text is not None:
        update_issue(ctx, uow, row["number"], issue_patch({"description": text}))
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
    row = live_issue(ctx, uow)
    view = issue_sql.issue_view(uow.conn, ctx.access.project.id, row["number"])
    assert view is not None
    current = set(json.loads(view["assignee_ids"]))
    wanted = (current | set(args.add)) - set(args.remove)
    if wanted == current:
        return {"status": "noop"}
    update_issue(ctx, uow, row["number"], issue_patch({"assignees": sorted(wanted)}))
    return {"status": "applied"}


def _apply_tags(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: SetOpsArgs = ctx.args
    row = live_issue(ctx, uow)
    project = ctx.access.project
    aliases = sync_sql.aliases(uow.conn, ctx.client_id)
    add = [aliases.get(t, t) for t in args.add]
    remove = {aliases.get(t, t) for t in args.remove}
    names = sync_sql.tags_by_ids(uow.conn, project.id, add)
    missing = [t for t in add if t not in names]
    if missing:
        raise ValidationFailed([("args.add", f"no tag {t} in this project") for t in missing])
    current = {
        r[0]: r[1]
        for r in uow.conn.execute(
            "SELECT t.id, t.name FROM issue_tags it JOIN tags t ON t.id = it.tag_id "
            "WHERE it.issue_id = ?",
            (row["id"],),
        )
    }
    wanted = {**current, **names}
    for tag_id in remove:
        wanted.pop(tag_id, None)
    if set(wanted) == set(current):
        return {"status": "noop"}
    update_issue(
        ctx, uow, row["number"], issue_patch({"tags": sorted(wanted.values(), key=str.lower)})
    )
    return {"status": "applied"}


# --- delete / restore ---------------------------------------------------------------------


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


DEFS = (
    MutationDef(
        "issue.create",
        1,
        Permission.ISSUE_CREATE,
        ("POST", "/orgs/{org}/projects/{project}/issues"),
        IssueCreateArgs,
        by_project,
        _apply_create,
        _prepare_create,
    ),
    MutationDef(
        "issue.update",
        1,
        Permission.ISSUE_CREATE,
        ("PATCH", ISSUE_PATH),
        IssueUpdateArgs,
        by_issue_id,
        _apply_update,
        _prepare_update,
    ),
    MutationDef(
        "issue.set_status",
        1,
        Permission.ISSUE_CREATE,
        ("PATCH", ISSUE_PATH),
        SetStatusArgs,
        by_issue_id,
        _apply_status,
    ),
    MutationDef(
        "issue.set_description",
        1,
        Permission.ISSUE_CREATE,
        ("PATCH", ISSUE_PATH),
        TextArgs,
        by_issue_id,
        _apply_description,
    ),
    MutationDef(
        "issue.assignees",
        1,
        Permission.ISSUE_UPDATE,
        ("PUT", ISSUE_PATH + "/assignees"),
        SetOpsArgs,
        by_issue_id,
        _apply_assignees,
        _prepare_assignees,
    ),
    MutationDef(
        "issue.tags",
        1,
        Permission.ISSUE_UPDATE,
        ("PUT", ISSUE_PATH + "/tags"),
        SetOpsArgs,
        by_issue_id,
        _apply_tags,
    ),
    MutationDef(
        "issue.delete",
        1,
        Permission.ISSUE_DELETE,
        ("DELETE", ISSUE_PATH),
        IdArgs,
        by_issue_id,
        _apply_delete,
        on_deleted=True,
    ),
    MutationDef(
        "issue.restore",
        1,
        Permission.ISSUE_DELETE,
        ("POST", ISSUE_PATH + "/restore"),
        IdArgs,
        by_issue_id,
        _apply_restore,
        on_deleted=True,
    ),
)
