"""Organizations: create (with their own tenant database), list, rename, archive, restore.

Orgs live in the system database's directory (slug -> id); each has a tenant
folder `<data_dir>/<org_id>/`. Deleting an org never destroys data on the spot:
the folder moves to `<data_dir>/.archive/<slug>-<timestamp>/` and the slug is
free again; `restore_org` (the `rhythm org restore` command) brings it back.
Every org-level change is also appended to the tenant's own change log, so the
tenant's audit trail is complete even though the directory row lives elsewhere.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import iso, new_id, now_iso, utcnow
from tracker.domain.models.base import Page
from tracker.domain.models.orgs import ListQuery, Org, OrgIn, OrgPatch
from tracker.domain.permissions import OrgRole
from tracker.domain.slugs import archive_name, slug_problem, slugify
from tracker.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from tracker.services.access import OrgAccess, OrgRef
from tracker.services.accounts import Principal
from tracker.services.changes import mutate
from tracker.services.runtime import Core
from tracker.storage import orgs as org_sql
from tracker.storage.files import private_dir

ARCHIVE_DIR = ".archive"
ARCHIVE_GRACE_SECONDS = 86400  # an archived org counts against its creator's cap this long


def to_org(row: Any, role: str | None) -> Org:
    return Org(
        id=row["id"], slug=row["slug"], name=row["name"], role=role, created_at=row["created_at"]
    )


def _check_slug(slug: str | None) -> None:
    if slug is not None and (problem := slug_problem(slug)) is not None:
        raise ValidationFailed([("slug", problem)])


async def create_org(core: Core, principal: Principal, data: OrgIn, actor: Actor) -> Org:
    """Create the tenant database, then the directory entry, then its first change row.

    The org becomes visible only when the directory row commits; any failure
    removes the directory row and the tenant folder again, so a failed create
    leaves no partial org behind.
    """
    _check_slug(data.slug)
    limit = core.settings.max_orgs_per_user
    if (
        limit
        and await core.system.read(lambda conn: _orgs_counted(conn, principal.user_id)) >= limit
    ):  # checked again in the insert's transaction: parallel creates cannot pass
        raise _too_many_orgs(limit)
    if data.slug is not None and await core.system.read(
        lambda conn: org_sql.slug_taken(conn, data.slug or "")
    ):
        raise Conflict(f"the slug '{data.slug}' is taken")  # fail before creating a file
    org_id = new_id()
    inserted = False
    try:
        await core.tenants.create(org_id)
        row = await core.system.write(lambda conn: _insert(conn, org_id, data, principal, limit))
        inserted = True
        access = OrgAccess(actor.user_id, OrgRef(org_id, row["slug"], row["name"], OrgRole.OWNER))
        await mutate(
            core,
            access,
            actor,
            lambda uow: uow.record(Entity.ORG, org_id, Op.CREATE, project=None, new=row),
        )
    except BaseException:
        if inserted:
            await core.system.write(lambda conn: org_sql.delete_org_row(conn, org_id))
        await _discard_tenant(core, org_id)
        raise
    return to_org(row, "owner")


def _orgs_counted(conn: sqlite3.Connection, user_id: str) -> int:
    since = iso(utcnow() - timedelta(seconds=ARCHIVE_GRACE_SECONDS))
    return org_sql.orgs_counted_for(conn, user_id, since)


def _too_many_orgs(limit: int) -> TooManyRequests:
    return TooManyRequests(
        f"you have created {limit} organizations, the most one user may (RHYTHM_MAX_ORGS_PER_USER)",
        retry_after=3600,
    )


def _insert(
    conn: sqlite3.Connection, org_id: str, data: OrgIn, principal: Principal, limit: int = 0
) -> dict[str, Any]:
    """Pick the slug and insert inside one system transaction, so parallel creates never race."""
    if limit and _orgs_counted(conn, principal.user_id) >= limit:
        raise _too_many_orgs(limit)
    slug = data.slug or org_sql.free_slug(conn, slugify(data.name))
    row = {"id": org_id, "slug": slug, "name": data.name, "created_by": principal.user_id,
           "created_at": now_iso()}  # fmt: skip
    if not org_sql.insert_org(conn, row):
        raise Conflict(f"the slug '{slug}' is taken")
    return row


async def _discard_tenant(core: Core, org_id: str) -> None:
    path = core.tenants.tenant_path(org_id)
    await core.tenants.forget(org_id)
    shutil.rmtree(path.parent, ignore_errors=True)


async def list_my_orgs(core: Core, principal: Principal, query: ListQuery) -> Page[Org]:
    """The caller's live orgs by slug, one page at a time."""
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else ""
    rows = await core.system.read(
        lambda conn: org_sql.orgs_of_user(conn, principal.user_id, after, query.limit + 1)
    )
    items = [to_org(r, r["my_role"]) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    return Page[Org](items=items, next_cursor=encode_cursor([items[-1].slug]) if more else None)


def get_org(access: OrgAccess) -> Org:
    org = access.org
    return Org(id=org.id, slug=org.slug, name=org.name, role=org.role, created_at=org.created_at)


async def patch_org(core: Core, access: OrgAccess, patch: OrgPatch, actor: Actor) -> Org:
    """Rename and/or re-slug an org (409 when the slug is taken by another live org)."""
    org = access.org
    _check_slug(patch.slug)
    before = {"name": org.name, "slug": org.slug}
    after = {**before, **patch.model_dump(exclude_none=True)}
    if after != before:
        ok = await core.system.write(
            lambda conn: org_sql.update_org(conn, org.id, after, now_iso())
        )
        if not ok:
            raise Conflict(f"the slug '{after['slug']}' is taken")
        await mutate(
            core,
            access,
            actor,
            lambda uow: uow.record_fields(
                Entity.ORG, org.id, project=None, before=before, after=after
            ),
        )
    return Org(
        id=org.id, slug=after["slug"], name=after["name"], role=org.role, created_at=org.created_at
    )


async def delete_org(core: Core, access: OrgAccess, actor: Actor) -> str:
    """Archive an org: log it, free the slug, close the tenant, move its folder aside.

    Returns the archive folder's path relative to the data directory.
    """
    org = access.org
    at = now_iso()
    relative = f"{ARCHIVE_DIR}/{archive_name(org.slug, at)}"
    old = {"id": org.id, "slug": org.slug, "name": org.name, "archive_path": relative}
    await mutate(
        core,
        access,
        actor,
        lambda uow: uow.record(Entity.ORG, org.id, Op.DELETE, project=None, old=old),
    )
    await core.system.write(lambda conn: org_sql.archive_org(conn, org.id, at, relative))
    core.access_cache.invalidate_org(org.id)  # the slug is free from this moment on
    await core.tenants.forget(org.id)  # waits for queued units, checkpoints, closes
    try:
        _move(core.tenants.tenant_path(org.id).parent, core.tenants.data_dir / relative)
    except OSError:
        await core.system.write(lambda conn: org_sql.unarchive_org(conn, org.id, org.slug, at))
        raise
    await core.tenants.forget(org.id)  # a request that resolved the org just before
    return relative


def _move(source: Path, target: Path) -> None:
    """Rename a tenant folder (same file system, atomic); the archive dir is private."""
    private_dir(target.parent, parents=True)
    if target.exists():
        raise Conflict(f"{target} already exists")
    os.rename(source, target)


async def restore_org(core: Core, ref: str, slug: str | None, actor: Actor) -> Org:
    """Bring an archived org back (by archive folder name, org id or former slug)."""
    row = _pick_archived(await core.system.read(org_sql.archived_orgs), ref)
    new_slug = slug or row["slug"]
    _check_slug(new_slug)
    archived = core.tenants.data_dir / row["archive_path"]
    home = core.tenants.tenant_path(row["id"]).parent
    if not archived.is_dir():
        raise NotFound(f"archive folder {archived} is missing")
    _move(archived, home)
    at = now_iso()
    if not await core.system.write(
        lambda conn: org_sql.unarchive_org(conn, row["id"], new_slug, at)
    ):
        os.rename(home, archived)
        raise Conflict(f"the slug '{new_slug}' is taken; restore under another slug")
    post = {"id": row["id"], "slug": new_slug, "name": row["name"],
            "created_by": row["created_by"], "created_at": row["created_at"]}  # fmt: skip
    access = OrgAccess(actor.user_id, OrgRef(row["id"], new_slug, row["name"], OrgRole.OWNER))
    await mutate(
        core,
        access,
        actor,
        lambda uow: uow.record(Entity.ORG, row["id"], Op.RESTORE, project=None, new=post),
    )
    return to_org(post, None)


def _pick_archived(rows: list[sqlite3.Row], ref: str) -> sqlite3.Row:
    for row in rows:  # newest first
        name = str(row["archive_path"] or "").rpartition("/")[2]
        if ref in (name, row["id"], row["slug"], row["archive_path"]):
            return row
    raise NotFound(f"no archived organization matches '{ref}'")


async def archived_orgs(core: Core) -> list[dict[str, Any]]:
    """Every archived org with its archive folder (for `rhythm org list --archived`)."""
    rows = await core.system.read(org_sql.archived_orgs)
    return [{k: row[k] for k in ("id", "slug", "name", "archived_at", "archive_path")}
            for row in rows]  # fmt: skip


async def all_live_orgs(core: Core) -> list[Org]:
    """Every live org (the operator's view on a data directory)."""
    rows = await core.system.read(org_sql.all_live_orgs)
    return [to_org(r, None) for r in rows]


async def orgs_of_user(core: Core, user_id: str) -> list[Org]:
    """Every org the user belongs to, with their role (no paging)."""
    rows = await core.system.read(lambda conn: org_sql.orgs_of_user(conn, user_id, limit=-1))
    return [to_org(r, r["my_role"]) for r in rows]
