"""Organizations: create (with their own tenant database), list mine."""

from __future__ import annotations

import shutil

from tracker.core import Core
from tracker.domain.ids import new_id, now_iso
from tracker.domain.models.orgs import Org, OrgIn
from tracker.domain.slugs import slug_problem, slugify
from tracker.errors import Conflict, ValidationFailed
from tracker.services.accounts import Principal
from tracker.services.changes import Actor, mutate
from tracker.storage import orgs as org_sql


async def create_org(core: Core, principal: Principal, data: OrgIn, actor: Actor) -> Org:
    """Create the tenant database first, then the directory entry; undo the file on failure.

    The org becomes visible only when the directory row commits, so a failure
    at any step leaves no partial org behind.
    """
    if data.slug is not None and (problem := slug_problem(data.slug)) is not None:
        raise ValidationFailed([("slug", problem)])
    org_id = new_id()
    await core.tenants.create(org_id)
    try:
        slug = data.slug or await _free_slug(core, slugify(data.name))
        row = {
            "id": org_id,
            "slug": slug,
            "name": data.name,
            "created_by": principal.user_id,
            "created_at": now_iso(),
        }
        if not await core.system.write(lambda conn: org_sql.insert_org(conn, row)):
            raise Conflict(f"the slug '{slug}' is taken")
        await mutate(
            core, org_id, actor,
            lambda uow: uow.record("org", org_id, "create", project=None, new=row),
        )  # fmt: skip
    except BaseException:
        await _discard_tenant(core, org_id)
        raise
    return Org(id=org_id, slug=slug, name=data.name, role="owner", created_at=row["created_at"])


async def _free_slug(core: Core, base: str) -> str:
    """`base`, or `base-2`, `base-3`... whichever is free (uniqueness is enforced on insert)."""

    def find(conn: object) -> str:
        candidate, n = base, 1
        while org_sql.slug_taken(conn, candidate):  # type: ignore[arg-type]
            n += 1
            candidate = f"{base[: 40 - len(str(n)) - 1]}-{n}"
        return candidate

    return await core.system.read(find)


async def _discard_tenant(core: Core, org_id: str) -> None:
    path = core.tenants.tenant_path(org_id)
    await core.tenants.forget(org_id)
    shutil.rmtree(path.parent, ignore_errors=True)


async def list_my_orgs(core: Core, principal: Principal) -> list[Org]:
    rows = await core.system.read(lambda conn: org_sql.orgs_of_user(conn, principal.user_id))
    return [
        Org(
            id=r["id"],
            slug=r["slug"],
            name=r["name"],
            role=r["my_role"],
            created_at=r["created_at"],
        )
        for r in rows
    ]
