"""Org and project memberships: add, change role, remove, leave, transfer ownership.

Org memberships live in the system database, project memberships in the
tenant; both are read on every request (services/access.py), so a change is
effective on the very next request. An org-membership change queues its tenant
change rows in the same system transaction (services/member_log.py), so a crash
between the two databases never loses the log entry or its event.
Rules beyond the route table (SPEC §3):
only an owner grants, changes or removes the `owner` role; the last owner can
neither leave nor be demoted (409); removing someone from an org also drops
their project memberships there. A project member must belong to the org.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import now_iso
from tracker.domain.models.base import Page
from tracker.domain.models.orgs import (
    ListQuery,
    OrgMember,
    OrgMemberIn,
    OrgMemberPatch,
    OwnershipTransferIn,
    ProjectMember,
    ProjectMemberIn,
    ProjectMemberPatch,
    UserRef,
)
from tracker.domain.permissions import OrgRole
from tracker.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tracker.services import member_log
from tracker.services.access import OrgAccess, OrgRef, ProjectAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.member_log import MemberRecord
from tracker.services.runtime import Core
from tracker.storage import orgs as org_sql
from tracker.storage import projects as project_sql
from tracker.storage import users as user_sql

LAST_OWNER = "an organization needs at least one owner; make someone else an owner first"


def _find_user(conn: sqlite3.Connection, ref: UserRef) -> sqlite3.Row:
    """The user a body names; an unknown one is a 422 on the field that named it."""
    if ref.user_id is not None:
        row = user_sql.user_by_id(conn, ref.user_id)
        field = "user_id"
    else:
        row = user_sql.user_by_email(conn, ref.email or "")
        field = "email"
    if row is None or row["disabled_at"] is not None:
        raise ValidationFailed([(field, "no such user")])
    return row


def _to_org_member(row: Any) -> OrgMember:
    return OrgMember(user_id=row["user_id"], email=row["email"], display_name=row["display_name"],
                     role=row["role"], created_at=row["created_at"])  # fmt: skip


def _is_owner(org: OrgRef) -> bool:
    return org.role is OrgRole.OWNER


# --- org members ------------------------------------------------------------------


async def list_org_members(core: Core, access: OrgAccess, query: ListQuery) -> Page[OrgMember]:
    """Members ordered by email, one page at a time."""
    org = access.org
    after = tuple(decode_cursor(query.cursor, (str, str))) if query.cursor else ("", "")
    rows = await core.system.read(
        lambda conn: org_sql.members(conn, org.id, (after[0], after[1]), query.limit + 1)
    )
    items = [_to_org_member(r) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    cursor = encode_cursor([items[-1].email.lower(), items[-1].user_id]) if more else None
    return Page[OrgMember](items=items, next_cursor=cursor)


async def add_org_member(
    core: Core, access: OrgAccess, data: OrgMemberIn, actor: Actor
) -> OrgMember:
    """Add an existing user with a role (owner only by an owner); 409 if already a member."""
    org = access.org
    if data.role == "owner" and not _is_owner(org):
        raise Forbidden("only an owner can make someone an owner")

    def work(conn: sqlite3.Connection) -> sqlite3.Row:
        user = _find_user(conn, data)
        row = {"org_id": org.id, "user_id": user["id"], "role": data.role, "created_at": now_iso()}
        if not org_sql.insert_member(conn, row):
            raise Conflict("that user is already a member of this organization")
        found = org_sql.member(conn, org.id, user["id"])
        assert found is not None
        post = {"org_id": org.id, "user_id": found["user_id"], "role": found["role"],
                "created_at": found["created_at"]}  # fmt: skip
        change = MemberRecord(Op.CREATE, new=post)
        member_log.enqueue(conn, org.id, actor, [(found["user_id"], change)])
        return found

    member = await core.system.write(work)
    await member_log.settle(core, org.id)
    return _to_org_member(member)


async def change_org_role(
    core: Core, access: OrgAccess, user_id: str, data: OrgMemberPatch, actor: Actor
) -> OrgMember:
    """Change a member's org role; owner changes need an owner; the last owner stays (409)."""
    org = access.org

    def work(conn: sqlite3.Connection) -> tuple[str, sqlite3.Row]:
        before = _member_or_404(conn, org.id, user_id)
        touches_owner = before["role"] == "owner" or data.role == "owner"
        if touches_owner and not _is_owner(org):
            raise Forbidden("only an owner can grant or change the owner role")
        if before["role"] == "owner" and data.role != "owner":
            _keep_an_owner(conn, org.id)
        org_sql.set_member_role(conn, org.id, user_id, data.role)
        after = org_sql.member(conn, org.id, user_id)
        assert after is not None
        if before["role"] != data.role:
            change = MemberRecord(Op.UPDATE, before["role"], data.role, field="role")
            member_log.enqueue(conn, org.id, actor, [(user_id, change)])
        return before["role"], after

    old_role, after = await core.system.write(work)
    if old_role != data.role:
        await member_log.settle(core, org.id)
    return _to_org_member(after)


def _member_or_404(conn: sqlite3.Connection, org_id: str, user_id: str) -> sqlite3.Row:
    row = org_sql.member(conn, org_id, user_id)
    if row is None:
        raise NotFound("member not found")
    return row


def _keep_an_owner(conn: sqlite3.Connection, org_id: str) -> None:
    if org_sql.owner_count(conn, org_id) <= 1:
        raise Conflict(LAST_OWNER)


async def remove_org_member(core: Core, access: OrgAccess, user_id: str, actor: Actor) -> None:
    """Remove a member (owners only by an owner) and their project memberships here."""
    org = access.org

    def work(conn: sqlite3.Connection) -> None:
        before = _member_or_404(conn, org.id, user_id)
        if before["role"] == "owner":
            if not _is_owner(org) and user_id != access.user_id:
                raise Forbidden("only an owner can remove an owner")
            _keep_an_owner(conn, org.id)
        org_sql.delete_member(conn, org.id, user_id)
        # the tenant side drops their project memberships too, in the same tenant transaction
        old = {"user_id": user_id, "role": before["role"], "created_at": before["created_at"]}
        member_log.enqueue(conn, org.id, actor, [(user_id, MemberRecord(Op.DELETE, old=old))],
                           drop_projects_of=user_id)  # fmt: skip

    await core.system.write(work)
    await member_log.settle(core, org.id)


async def leave_org(core: Core, access: OrgAccess, actor: Actor) -> None:
    """The caller leaves the org (409 when they are its last owner)."""
    assert access.user_id is not None
    await remove_org_member(core, access, access.user_id, actor)


async def transfer_ownership(
    core: Core, access: OrgAccess, data: OwnershipTransferIn, actor: Actor
) -> OrgMember:
    """Make another member an owner and step the calling owner down to admin, atomically."""
    org = access.org
    me = access.user_id

    def work(conn: sqlite3.Connection) -> sqlite3.Row:
        user = _find_user(conn, data)
        target = org_sql.member(conn, org.id, user["id"])
        field = "user_id" if data.user_id is not None else "email"
        if target is None:
            raise ValidationFailed([(field, "not a member of this organization")])
        if user["id"] == me:
            raise ValidationFailed([(field, "you already own this organization")])
        org_sql.set_member_role(conn, org.id, user["id"], "owner")
        org_sql.set_member_role(conn, org.id, me or "", "admin")
        after = org_sql.member(conn, org.id, user["id"])
        assert after is not None
        member_log.enqueue(conn, org.id, actor, [
            (user["id"], MemberRecord(Op.UPDATE, target["role"], "owner", field="role")),
            (me or "", MemberRecord(Op.UPDATE, "owner", "admin", field="role")),
        ])  # fmt: skip
        return after

    after = await core.system.write(work)
    await member_log.settle(core, org.id)
    return _to_org_member(after)


# --- project members ----------------------------------------------------------------


async def list_project_members(
    core: Core, access: ProjectAccess, query: ListQuery
) -> Page[ProjectMember]:
    """Explicit project members by user id (org owners/admins are implicit admins)."""
    project = access.project
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else ""
    rows = await read(
        core, access, lambda conn: project_sql.members(conn, project.id, after, query.limit + 1)
    )
    ids = [r["user_id"] for r in rows[: query.limit]]
    users = await core.system.read(lambda conn: user_sql.users_by_ids(conn, ids))
    by_id = {u["id"]: u for u in users}
    items = [_to_project_member(r, by_id.get(r["user_id"])) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    return Page[ProjectMember](items=items, next_cursor=encode_cursor([ids[-1]]) if more else None)


def _to_project_member(row: Any, user: Any) -> ProjectMember:
    return ProjectMember(
        user_id=row["user_id"], email=user["email"] if user else "",
        display_name=user["display_name"] if user else "", role=row["role"],
        created_at=row["created_at"],
    )  # fmt: skip


async def add_project_member(
    core: Core, access: ProjectAccess, data: ProjectMemberIn, actor: Actor
) -> ProjectMember:
    """Give an org member a project role (422 for strangers, 409 if already a member)."""
    org, project = access.org, access.project

    def find(conn: sqlite3.Connection) -> sqlite3.Row:
        user = _find_user(conn, data)
        if not org_sql.member(conn, org.id, user["id"]):
            field = "user_id" if data.user_id is not None else "email"
            raise ValidationFailed([(field, "not a member of this organization")])
        return user

    user = await core.system.read(find)
    row = {"project_id": project.id, "user_id": user["id"], "role": data.role,
           "created_at": now_iso()}  # fmt: skip

    def work(uow: UnitOfWork) -> None:
        if not project_sql.insert_member(uow.conn, row):
            raise Conflict("that user is already a member of this project")
        uow.record(Entity.PROJECT_MEMBER, user["id"], Op.CREATE, project=project.id, new=row)

    await mutate(core, access, actor, work)
    return _to_project_member(row, user)


async def change_project_role(
    core: Core, access: ProjectAccess, user_id: str, data: ProjectMemberPatch, actor: Actor
) -> ProjectMember:
    project = access.project

    def work(uow: UnitOfWork) -> sqlite3.Row:
        before = _project_member_or_404(uow.conn, project.id, user_id)
        if before["role"] != data.role:
            project_sql.set_member_role(uow.conn, project.id, user_id, data.role)
            uow.record(Entity.PROJECT_MEMBER, user_id, Op.UPDATE, project=project.id, field="role",
                       old=before["role"], new=data.role)  # fmt: skip
        after = project_sql.member(uow.conn, project.id, user_id)
        assert after is not None
        return after

    after = await mutate(core, access, actor, work)
    user = await core.system.read(lambda conn: user_sql.user_by_id(conn, user_id))
    return _to_project_member(after, user)


def _project_member_or_404(conn: sqlite3.Connection, project_id: str, user_id: str) -> sqlite3.Row:
    row = project_sql.member(conn, project_id, user_id)
    if row is None:
        raise NotFound("member not found")
    return row


async def remove_project_member(
    core: Core, access: ProjectAccess, user_id: str, actor: Actor
) -> None:
    project = access.project

    def work(uow: UnitOfWork) -> None:
        before = _project_member_or_404(uow.conn, project.id, user_id)
        project_sql.delete_member(uow.conn, project.id, user_id)
        uow.record(Entity.PROJECT_MEMBER, user_id, Op.DELETE, project=project.id, old=dict(before))

    await mutate(core, access, actor, work)
