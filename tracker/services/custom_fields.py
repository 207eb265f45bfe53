"""Custom field definitions per project (text, number, date, enum, multi_enum, user).

Definitions are managed by project admins; values live on issues, keyed by
field id, and are validated by tracker.domain.custom_fields. Deleting a
definition leaves the stored values in place but unseen (reads ignore them),
so a delete never rewrites thousands of issues.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.custom_fields import FieldDef, check_options
from tracker.domain.ids import new_id
from tracker.domain.models.issues import CustomField, CustomFieldIn, CustomFieldPatch
from tracker.errors import Conflict, NotFound, ValidationFailed
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.storage import custom_fields as field_sql


def field_defs(conn: sqlite3.Connection, project_id: str) -> list[FieldDef]:
    """The project's definitions for validation and display (call on the db thread)."""
    return [
        FieldDef(
            r["id"], r["name"], r["type"], tuple(json.loads(r["options"])), bool(r["required"])
        )
        for r in field_sql.fields_of(conn, project_id)
    ]


def to_field(row: sqlite3.Row | dict[str, Any]) -> CustomField:
    options = row["options"]
    return CustomField(
        id=row["id"], name=row["name"], type=row["type"],
        options=json.loads(options) if isinstance(options, str) else options,
        required=bool(row["required"]), position=row["position"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )  # fmt: skip


async def list_fields(core: Core, access: ProjectAccess) -> list[CustomField]:
    project = access.project
    rows = await read(core, access, lambda conn: field_sql.fields_of(conn, project.id))
    return [to_field(r) for r in rows]


async def create_field(
    core: Core, access: ProjectAccess, data: CustomFieldIn, actor: Actor
) -> CustomField:
    """Add a definition; 409 when the name is taken, 422 for bad options."""
    project = access.project
    if problems := check_options(data.type, data.options):
        raise ValidationFailed(problems)

    def work(uow: UnitOfWork) -> CustomField:
        position = data.position
        if position is None:
            position = field_sql.next_position(uow.conn, project.id)
        row = {
            "id": new_id(), "project_id": project.id, "name": data.name, "type": data.type,
            "options": data.options, "required": int(data.required), "position": position,
            "created_at": uow.at, "updated_at": uow.at,
        }  # fmt: skip
        if not field_sql.insert_field(uow.conn, row):
            raise Conflict(f"a field named '{data.name}' exists in this project")
        field = to_field(row)
        uow.record(Entity.CUSTOM_FIELD, field.id, Op.CREATE, project=project.id,
                   new=field.model_dump())  # fmt: skip
        return field

    return await mutate(core, access, actor, work)


async def update_field(
    core: Core, access: ProjectAccess, field_id: str, patch: CustomFieldPatch, actor: Actor
) -> CustomField:
    """Rename, change options, required or position; the type never changes."""
    project = access.project
    values = patch.model_dump(include=patch.model_fields_set)

    def work(uow: UnitOfWork) -> CustomField:
        row = field_sql.field_by_id(uow.conn, project.id, field_id)
        if row is None:
            raise NotFound("custom field not found")
        before = to_field(row)
        if "options" in values and (problems := check_options(before.type, values["options"])):
            raise ValidationFailed(problems)
        stored = {k: int(v) if k == "required" else v for k, v in values.items()}
        if not field_sql.update_field(uow.conn, field_id, stored, uow.at):
            raise Conflict(f"a field named '{values.get('name')}' exists in this project")
        after_row = field_sql.field_by_id(uow.conn, project.id, field_id)
        assert after_row is not None  # updated just above, in this transaction
        after = to_field(after_row)
        names = set(values)
        uow.record_fields(
            Entity.CUSTOM_FIELD, field_id, project=project.id,
            before=before.model_dump(include=names), after=after.model_dump(include=names),
        )  # fmt: skip
        return after

    return await mutate(core, access, actor, work)


async def delete_field(core: Core, access: ProjectAccess, field_id: str, actor: Actor) -> None:
    project = access.project

    def work(uow: UnitOfWork) -> None:
        row = field_sql.field_by_id(uow.conn, project.id, field_id)
        if row is None:
            raise NotFound("custom field not found")
        field_sql.delete_field(uow.conn, field_id)
        uow.record(Entity.CUSTOM_FIELD, field_id, Op.DELETE, project=project.id,
                   old=to_field(row).model_dump())  # fmt: skip

    await mutate(core, access, actor, work)
