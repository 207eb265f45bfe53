"""Invitations: org admins invite by email; registering with that email joins the org.

With `RHYTHM_SIGNUP=invite` an invitation is the only way to register (the
`rhythm user create` door stays open to operators). An invitation lasts
INVITE_TTL_DAYS; an address that already has an account is added as a member
instead (POST …/members), so inviting it is a 409.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

from tracker.domain.changes import Actor, Op, Origin
from tracker.domain.ids import iso, new_id, utcnow
from tracker.domain.models.base import Page
from tracker.domain.models.invites import Invite, InviteIn
from tracker.errors import Conflict, NotFound, TooManyRequests
from tracker.services import member_log
from tracker.services.access import OrgAccess
from tracker.services.member_log import MemberRecord
from tracker.services.runtime import Core
from tracker.storage import invites as invite_sql
from tracker.storage import orgs as org_sql
from tracker.storage import users as user_sql

INVITE_TTL_DAYS = 7
MAX_PENDING_PER_ORG = 500  # invitations are system-DB rows an admin creates at will


def _to_invite(row: Any) -> Invite:
    return Invite(**{key: row[key] for key in Invite.model_fields})


async def create_invite(core: Core, access: OrgAccess, data: InviteIn) -> Invite:
    org_id = access.org.id
    now = utcnow()
    created_at = iso(now)
    row = {"id": new_id(), "org_id": org_id, "email": data.email, "role": data.role,
           "invited_by": access.user_id, "created_at": created_at,
           "expires_at": iso(now + timedelta(days=INVITE_TTL_DAYS))}  # fmt: skip

    def work(conn: sqlite3.Connection) -> None:
        if len(invite_sql.pending_for_org(conn, org_id, created_at)) >= MAX_PENDING_PER_ORG:
            raise TooManyRequests(
                f"this organization has {MAX_PENDING_PER_ORG} pending invitations; "
                "revoke some or wait for them to be used",
                retry_after=3600,
            )
        if user_sql.user_by_email(conn, data.email) is not None:
            raise Conflict("that address already has an account; add it as a member instead")
        if not invite_sql.insert_invite(conn, row):
            raise Conflict("that address already has a pending invitation to this organization")

    await core.system.write(work)
    return _to_invite(row)


async def list_invites(core: Core, access: OrgAccess) -> Page[Invite]:
    org_id, now = access.org.id, iso(utcnow())
    rows = await core.system.read(lambda conn: invite_sql.pending_for_org(conn, org_id, now))
    return Page[Invite](items=[_to_invite(r) for r in rows], next_cursor=None)


async def revoke_invite(core: Core, access: OrgAccess, invite_id: str) -> None:
    org_id = access.org.id
    if not await core.system.write(lambda c: invite_sql.delete_invite(c, org_id, invite_id)):
        raise NotFound("invitation not found")


def accept_invites(
    conn: sqlite3.Connection, email: str, user_id: str, at: str
) -> list[dict[str, Any]]:
    """In the registering transaction: join every org that invited `email`, and queue
    each org's change-log entry in the same transaction (member_log), so a crash after
    the commit leaves the join to be logged at the next start, never unlogged."""
    joined = []
    actor = Actor(user_id, Origin.API)
    for invite in invite_sql.pending_for_email(conn, email, at):
        member = {"org_id": invite["org_id"], "user_id": user_id, "role": invite["role"],
                  "created_at": at}  # fmt: skip
        if org_sql.insert_member(conn, member):
            joined.append(member)
            change = MemberRecord(Op.CREATE, new=member)
            member_log.enqueue(conn, invite["org_id"], actor, [(user_id, change)])
        invite_sql.mark_accepted(conn, invite["id"], user_id, at)
    return joined


async def log_joins(core: Core, joined: list[dict[str, Any]]) -> None:
    """After commit: each org's own change log records the new member (and the access
    cache hears of it through the event bus)."""
    for member in joined:
        await member_log.settle(core, member["org_id"])
