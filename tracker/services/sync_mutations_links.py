"""Sync mutations on what hangs off issues: comments, time entries, relations, tags.
Each applies the change with the REST door's own service functions (docs/sync.md)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

from pydantic import Field, ValidationError

from tracker.domain.ids import utcnow
from tracker.domain.models.base import Input
from tracker.domain.models.comments import INVERSE, CommentIn, CommentPatch, TimeEntryIn
from tracker.domain.models.issues import TagIn
from tracker.domain.permissions import Permission
from tracker.domain.sync import CLOCK_TOLERANCE_DAYS
from tracker.errors import ValidationFailed
from tracker.services import comments as comment_svc
from tracker.services import relations as relation_svc
from tracker.services import tags as tag_svc
from tracker.services import time_entries as time_svc
from tracker.services.changes import UnitOfWork
from tracker.services.sync_keys import rewrite_keys
from tracker.services.sync_mutation_base import (
    ISSUE_PATH,
    AlreadyDone,
    Ctx,
    IdArgs,
    MutationDef,
    Rejected,
    Target,
    Uuid,
    by_issue_ref,
    by_project,
    check_uuid,
    live_issue,
    merged,
    not_found,
)
from tracker.storage import sync as sync_sql


class CommentEditArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)
    base: str = Field(max_length=100_000)
    body: str = Field(max_length=100_000)


def _comment_target(conn: sqlite3.Connection, args: Any) -> Target:
    check_uuid(args.id, "id")
    row = sync_sql.comment_by_id(conn, args.id)
    if row is None:
        raise not_found("comment")
    issue = sync_sql.issue_by_id(conn, row["issue_id"])
    return Target(str(row["project_key"]), issue, row)


def _apply_comment_edit(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: CommentEditArgs = ctx.args
    row = live_issue(ctx, uow)
    comment = sync_sql.comment_by_id(uow.conn, args.id)
    if comment is None:
        raise Rejected("target_deleted", 410, "Deleted meanwhile", "the comment was deleted")
    base, mine = (rewrite_keys(uow.conn, ctx.client_id, t) for t in (args.base, args.body))
    result, text = merged(uow, base, comment["body"], mine)
    if text is not None:
        try:
            patch = CommentPatch(body=text)
        except ValidationError as exc:
            raise ValidationFailed.from_pydantic(exc, prefix="args.") from None
        comment_svc.update_comment_in(
            uow, ctx.access, row["number"], args.id, patch, None, uow.actor
        )
    return result


# --- comments -----------------------------------------------------------------------------


class CommentCreateArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)
    issue_id: Uuid = Field(min_length=36, max_length=36)
    body: str = Field(max_length=100_000)


def _apply_comment(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: CommentCreateArgs = ctx.args
    check_uuid(args.id, "id")
    row = live_issue(ctx, uow)
    if sync_sql.exists(uow.conn, "comments", args.id):
        raise Rejected("id_conflict", 409, "Id in use", "a comment with that id already exists")
    try:
        body = CommentIn(body=rewrite_keys(uow.conn, ctx.client_id, args.body))
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="args.") from None
    comment_svc.comment_in(uow, ctx.access, row["number"], body, uow.actor, comment_id=args.id)
    return {"status": "applied"}


def _comment_delete_target(conn: sqlite3.Connection, args: Any) -> Target:
    check_uuid(args.id, "id")
    row = sync_sql.comment_by_id(conn, args.id)
    if row is None:  # already gone: deleting is idempotent
        raise AlreadyDone()
    issue = sync_sql.issue_by_id(conn, row["issue_id"])
    return Target(str(row["project_key"]), issue, row)


def _apply_comment_delete(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    row = live_issue(ctx, uow)
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
    check_uuid(args.id, "id")
    row = live_issue(ctx, uow)
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
            raise Rejected(
                "clock",
                422,
                "Date in the future",
                f"time logged for {day.isoformat()} is after the server's "
                f"tomorrow ({today.isoformat()} + 1 day); check your clock",
                server_date=today.isoformat(),
            )
    time_svc.log_time_in(uow, ctx.access, row["number"], data, uow.actor, entry_id=args.id)
    return {"status": "applied"}


# --- relations ------------------------------------------------------------------------


class RelationAddArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36, description="the link's pair id")
    issue_id: Uuid = Field(min_length=36, max_length=36)
    kind: str = Field(max_length=32)
    target_id: Uuid = Field(min_length=36, max_length=36)


async def _prepare_relation(ctx: Ctx) -> None:
    """The other side, by the REST door's own lookup (its project must be visible)."""
    args: RelationAddArgs = ctx.args
    if args.kind not in INVERSE:
        raise ValidationFailed([("args.kind", f"one of {', '.join(sorted(INVERSE))}")])
    check_uuid(args.target_id, "target_id")
    from tracker.services.access import read

    other = await read(ctx.core, ctx.access, lambda c: sync_sql.issue_by_id(c, args.target_id))
    if other is None or other["deleted_at"] is not None:
        raise not_found("issue")
    ref = f"{other['project_key']}-{other['number']}"
    ctx.extra["target"] = await relation_svc.target_of(ctx.core, ctx.access, ref)


def _apply_relation(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: RelationAddArgs = ctx.args
    row = live_issue(ctx, uow)
    if sync_sql.relation_exists(uow.conn, row["id"], args.target_id, args.kind):
        return {"status": "noop"}
    relation_svc.relation_in(
        uow, ctx.access, row["number"], ctx.extra["target"], args.kind, pair_id=args.id
    )
    return {"status": "applied"}


class RelationRemoveArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36, description="the link's pair id")
    issue_id: Uuid = Field(min_length=36, max_length=36)


def _apply_relation_remove(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    args: RelationRemoveArgs = ctx.args
    row = live_issue(ctx, uow)
    side = sync_sql.relation_side(uow.conn, args.id, row["id"])
    if side is None:
        return {"status": "noop"}
    relation_svc.delete_relation_in(uow, ctx.access, row["number"], side["id"])
    return {"status": "applied"}


def _time_entry_target(conn: sqlite3.Connection, args: Any) -> Target:
    check_uuid(args.id, "id")
    row = sync_sql.time_entry_by_id(conn, args.id)
    if row is None:  # already gone: deleting is idempotent
        raise AlreadyDone()
    return Target(str(row["project_key"]), sync_sql.issue_by_id(conn, row["issue_id"]), row)


def _apply_time_delete(ctx: Ctx, uow: UnitOfWork) -> dict[str, Any]:
    row = live_issue(ctx, uow)
    if sync_sql.time_entry_by_id(uow.conn, ctx.args.id) is None:
        return {"status": "noop"}
    time_svc.delete_time_entry_in(uow, ctx.access, row["number"], ctx.args.id, uow.actor)
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
    check_uuid(args.id, "id")
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


DEFS = (
    MutationDef(
        "comment.create",
        1,
        Permission.COMMENT_CREATE,
        ("POST", ISSUE_PATH + "/comments"),
        CommentCreateArgs,
        by_issue_ref,
        _apply_comment,
    ),
    MutationDef(
        "comment.edit",
        1,
        Permission.COMMENT_CREATE,
        ("PATCH", ISSUE_PATH + "/comments/{comment_id}"),
        CommentEditArgs,
        _comment_target,
        _apply_comment_edit,
    ),
    MutationDef(
        "comment.delete",
        1,
        Permission.COMMENT_CREATE,
        ("DELETE", ISSUE_PATH + "/comments/{comment_id}"),
        IdArgs,
        _comment_delete_target,
        _apply_comment_delete,
    ),
    MutationDef(
        "time_entry.create",
        1,
        Permission.TIME_LOG,
        ("POST", ISSUE_PATH + "/time-entries"),
        TimeEntryArgs,
        by_issue_ref,
        _apply_time,
    ),
    MutationDef(
        "time_entry.delete",
        1,
        Permission.TIME_LOG,
        ("DELETE", ISSUE_PATH + "/time-entries/{entry_id}"),
        IdArgs,
        _time_entry_target,
        _apply_time_delete,
    ),
    MutationDef(
        "relation.add",
        1,
        Permission.ISSUE_UPDATE,
        ("POST", ISSUE_PATH + "/relations"),
        RelationAddArgs,
        by_issue_ref,
        _apply_relation,
        _prepare_relation,
    ),
    MutationDef(
        "relation.remove",
        1,
        Permission.ISSUE_UPDATE,
        ("DELETE", ISSUE_PATH + "/relations/{relation_id}"),
        RelationRemoveArgs,
        by_issue_ref,
        _apply_relation_remove,
    ),
    MutationDef(
        "tag.create",
        1,
        Permission.TAG_CREATE,
        ("POST", "/orgs/{org}/projects/{project}/tags"),
        TagCreateArgs,
        by_project,
        _apply_tag,
    ),
)
