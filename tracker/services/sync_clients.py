"""Sync replicas (client ids) and what a replica may receive: `info`, register, scope,
revoke, and the per-request client check every sync endpoint makes (docs/sync.md)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tracker.domain import sync as proto
from tracker.domain.changes import Actor, Origin
from tracker.domain.ids import is_uuid, iso, new_id, now_iso, parse_iso, utcnow
from tracker.domain.permissions import OrgRole, ProjectRole, effective_project_role
from tracker.errors import ClientNotYours, ClientRevoked, ClientUnknown, ValidationFailed
from tracker.services.access import OrgAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.services.sync_mutations import REGISTRY
from tracker.storage import changes as change_sql
from tracker.storage import projects as project_sql
from tracker.storage import sync as sync_sql
from tracker.storage import sync_state


@dataclass(frozen=True)
class Visible:
    """The projects a person may read in this tenant now: id -> (key, name, role)."""

    projects: dict[str, tuple[str, str, ProjectRole]]

    def ids_for(self, scope: list[str]) -> set[str]:
        """Project ids a client's scope covers among the visible ones."""
        if scope == ["*"]:
            return set(self.projects)
        wanted = {key.upper() for key in scope}
        return {pid for pid, (key, _, _) in self.projects.items() if key.upper() in wanted}

    def key_of(self, project_id: str, fallback: dict[str, str]) -> str:
        found = self.projects.get(project_id)
        return found[0] if found else fallback.get(project_id, project_id)


def visible_in(conn: sqlite3.Connection, user_id: str, org_role: OrgRole | None) -> Visible:
    """What `user_id` may read, by the permission table's rule (as the change feed decides)."""
    names = {pid: (key, name) for pid, key, name in sync_sql.live_projects(conn)}
    found: dict[str, tuple[str, str, ProjectRole]] = {}
    if org_role is None:
        return Visible(found)
    for project_id, visibility, member_role in project_sql.visibility_facts(conn, user_id):
        role = effective_project_role(
            org_role, ProjectRole(member_role) if member_role else None, visibility
        )
        if role is not None and project_id in names:
            found[project_id] = (*names[project_id], role)
    return Visible(found)


def project_keys(conn: sqlite3.Connection) -> dict[str, str]:
    """id -> key of every project (also deleted ones: names for `scope.removed`)."""
    rows = conn.execute("SELECT id, key FROM projects").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def check_client(
    conn: sqlite3.Connection, client_id: str, user_id: str | None, ttl_days: int | None = None
) -> dict[str, Any]:
    """The client row, or the request-level refusal: 404 unknown, 403 revoked / not yours /
    not seen for `ttl_days` (RHYTHM_SYNC_CLIENT_TTL_DAYS; the sweep revokes it for good)."""
    row = sync_sql.client(conn, client_id) if is_uuid(client_id) else None
    if row is None:
        raise ClientUnknown("no sync client with that id here: register again (POST sync/clients)")
    if row["user_id"] != user_id:
        raise ClientNotYours("that sync client belongs to another user")
    expired = ttl_days is not None and row["last_seen_at"] < stale_before(ttl_days)
    if row["revoked_at"] is not None or expired:
        if expired or _swept(row, ttl_days):
            raise ClientRevoked(
                f"this sync client was not seen since {row['last_seen_at']} (replicas unused"
                f" for {ttl_days or 'the set number of'} days expire); clone again to keep"
                " working"
            )
        raise ClientRevoked(
            f"this sync client was revoked at {row['revoked_at']}; clone again to keep working"
        )
    return row


def stale_before(ttl_days: int) -> str:
    """Clients last seen before this time have expired."""
    return iso(utcnow() - timedelta(days=ttl_days))


def _swept(row: dict[str, Any], ttl_days: int | None) -> bool:
    """Revoked by the TTL sweep (not by DELETE): unseen for the TTL when it was revoked."""
    if ttl_days is None or not row["revoked_at"]:
        return False
    return bool(row["last_seen_at"] < iso(parse_iso(row["revoked_at"]) - timedelta(days=ttl_days)))


def sweep(conn: sqlite3.Connection, ttl_days: int, at: str) -> int:
    """Revoke the org's expired clients and drop what revoked ones kept (docs/sync.md):
    run where a write already happens (register, the end of a push), never per read."""
    return sync_sql.sweep_stale_clients(conn, stale_before(ttl_days), at)


def client_out(row: dict[str, Any], epoch: str) -> proto.ClientOut:
    return proto.ClientOut(
        client_id=row["id"], epoch=epoch, last_mutation_id=row["last_mutation_id"],
        scope=json.loads(row["scope"]) if isinstance(row["scope"], str) else row["scope"],
        device=row["device"], server_time=now_iso(),
    )  # fmt: skip


def _check_scope(visible: Visible, scope: list[str]) -> None:
    if scope == ["*"]:
        return
    known = {key.upper() for key, _, _ in visible.projects.values()}
    missing = [key for key in scope if key.upper() not in known]
    if missing:
        raise ValidationFailed([("scope", f"no project {', '.join(missing)} you can read")])


async def info(core: Core, access: OrgAccess) -> proto.InfoOut:
    user_id, role = access.user_id, access.org.role

    def work(conn: sqlite3.Connection) -> proto.InfoOut:
        assert user_id is not None
        visible = visible_in(conn, user_id, role)
        counts = sync_sql.issue_counts(conn)
        state = sync_state.load(conn)
        return proto.InfoOut(
            protocol={"min": proto.PROTOCOL_MIN, "max": proto.PROTOCOL_MAX},
            schema={"min": proto.SCHEMA_MIN, "current": proto.SCHEMA_CURRENT},
            epoch=state.epoch, head=change_sql.head(conn), min_seq=state.min_seq,
            server_time=now_iso(),
            projects=[
                proto.InfoProject(id=pid, key=key, name=name, role=str(prole),
                                  issues=counts.get(pid, 0))
                for pid, (key, name, prole) in sorted(visible.projects.items(),
                                                      key=lambda kv: kv[1][0])
            ],
            mutations=sorted(f"{name}@{v}" for name, v in REGISTRY),
            limits={
                "push_max_mutations": proto.PUSH_MAX_MUTATIONS,
                "push_max_bytes": proto.PUSH_MAX_BYTES,
                "pull_max_items": proto.PULL_MAX_ITEMS,
                "snapshot_max_items": proto.SNAPSHOT_MAX_ITEMS,
                "reset_threshold": proto.RESET_THRESHOLD,
            },
        )  # fmt: skip

    return await read(core, access, work)


async def register(core: Core, access: OrgAccess, data: proto.ClientIn) -> proto.ClientOut:
    """Issue a client id bound to the caller (never self-assigned by the replica)."""
    user_id, role = access.user_id, access.org.role
    assert user_id is not None

    ttl = core.settings.sync_client_ttl_days

    def work(uow: UnitOfWork) -> proto.ClientOut:
        _check_scope(visible_in(uow.conn, user_id, role), data.scope)
        sweep(uow.conn, ttl, uow.at)
        client_id = new_id()
        row = {"id": client_id, "user_id": user_id, "device": data.device,
               "scope": json.dumps(data.scope), "schema": data.schema_, "at": uow.at}  # fmt: skip
        sync_sql.insert_client(uow.conn, row)
        stored = sync_sql.client(uow.conn, client_id)
        assert stored is not None
        return client_out(stored, sync_state.load(uow.conn).epoch)

    return await mutate(core, access, Actor(user_id, Origin.SYNC), work)


async def update(
    core: Core, access: OrgAccess, client_id: str, data: proto.ClientPatch
) -> proto.ClientOut:
    """Change a replica's scope (a later pull reports what was added or removed)."""
    user_id, role = access.user_id, access.org.role

    ttl = core.settings.sync_client_ttl_days

    def work(uow: UnitOfWork) -> proto.ClientOut:
        assert user_id is not None
        check_client(uow.conn, client_id, user_id, ttl)
        _check_scope(visible_in(uow.conn, user_id, role), data.scope)
        sync_sql.update_client(uow.conn, client_id, data.scope, data.device, uow.at)
        stored = sync_sql.client(uow.conn, client_id)
        assert stored is not None
        return client_out(stored, sync_state.load(uow.conn).epoch)

    return await mutate(core, access, Actor(user_id, Origin.SYNC), work)


async def revoke(core: Core, access: OrgAccess, client_id: str) -> None:
    """Revoke a replica (a lost laptop): its later requests get 403."""
    user_id = access.user_id

    def work(uow: UnitOfWork) -> None:
        check_client(uow.conn, client_id, user_id)
        sync_sql.revoke_client(uow.conn, client_id, uow.at)

    await mutate(core, access, Actor(user_id, Origin.SYNC), work)
