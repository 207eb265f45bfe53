"""Projects: create with the default workflow; read."""

from __future__ import annotations

from typing import Any

from tracker.core import Core
from tracker.domain.ids import new_id, now_iso
from tracker.domain.models.orgs import Project, ProjectIn
from tracker.domain.workflow import DEFAULT_STAGES
from tracker.errors import Conflict
from tracker.services.access import Access, ProjectRef
from tracker.services.changes import Actor, UnitOfWork, mutate
from tracker.storage import projects as project_sql


def to_project(row: dict[str, Any], role: str | None = None) -> Project:
    return Project(
        id=row["id"], key=row["key"], name=row["name"], description=row["description"],
        visibility=row["visibility"], role=role, created_at=row["created_at"],
        updated_at=row["updated_at"], version=row["version"],
    )  # fmt: skip


async def create_project(core: Core, access: Access, data: ProjectIn, actor: Actor) -> Project:
    """Create a project and its default stages in one change batch."""
    assert access.org is not None
    now = now_iso()
    row: dict[str, Any] = {
        "id": new_id(), "key": data.key.upper(), "name": data.name,
        "description": data.description, "visibility": data.visibility,
        "created_by": actor.user_id, "created_at": now, "updated_at": now, "version": 1,
    }  # fmt: skip

    def work(uow: UnitOfWork) -> None:
        if not project_sql.insert_project(uow.conn, row):
            raise Conflict(f"the project key '{row['key']}' is taken in this organization")
        uow.record("project", row["id"], "create", project=row["id"], new=row, version=1)
        for position, (name, category) in enumerate(DEFAULT_STAGES):
            stage = {
                "id": new_id(), "project_id": row["id"], "name": name,
                "category": category, "position": position, "created_at": now,
            }  # fmt: skip
            project_sql.insert_stage(uow.conn, stage)
            uow.record("stage", str(stage["id"]), "create", project=row["id"], new=stage)

    await mutate(core, access.org.id, actor, work)
    return to_project(row, "admin")


def project_of(access: Access) -> ProjectRef:
    """The project a project-scoped route resolved (the wrapper guarantees it)."""
    assert access.project is not None
    return access.project


async def get_project(access: Access) -> Project:
    project = project_of(access)
    return to_project(project.row, str(project.role) if project.role else None)
