"""Automation scripts of a project (SPEC §8): save with compile, revisions, runs.

Saving compiles the source and runs its top level once in the sandbox (in a
worker process) to collect its triggers; a syntax error, a top-level error, a
blown budget, an unknown event name or a bad cron line is a 422 whose error
names the line. A new `source` is a new revision; the person who saves it
becomes the script's owner, whose project rights every run re-checks.
Script rows are project configuration: their changes are in the change log
(entity `script`), their run log is operational data (tracker.storage.scripts).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from croniter import croniter

from tracker.domain.changes import Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.events import EVENT_NAMES
from tracker.domain.ids import iso, new_id, utcnow
from tracker.domain.models.base import Page
from tracker.domain.models.comments import SubListQuery
from tracker.domain.models.scripts import (
    Revision,
    Run,
    RunTrigger,
    Script,
    ScriptDetail,
    ScriptIn,
    ScriptPatch,
    Trigger,
)
from tracker.domain.versions import if_match_ok
from tracker.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    ValidationFailed,
)
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import Actor, UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.storage import changes as change_sql
from tracker.storage import scripts as script_sql

#: The change-feed consumer that runs event triggers (its cursor name).
CONSUMER = "scripts"


# --- compile ------------------------------------------------------------------------------


async def compile_source(core: Core, source: str) -> list[dict[str, Any]]:
    """The source's triggers, or a 422 naming the line of the first fault."""
    job = {
        "mode": "compile",
        "source": source,
        "cpu_ms": core.settings.script_timeout_ms,
        "memory_mb": core.settings.script_memory_mb,
    }
    deadline = core.settings.script_timeout_ms * 2 / 1000 + 1.0
    result = await core.scripts.run_async(job, _no_reads, deadline)
    if result["status"] == "skipped":  # no worker became free: the server is busy, not the source
        raise ServiceUnavailable("every script worker is busy; try again")
    if result["status"] != "ok":
        raise source_error(result.get("line"), result.get("error") or result["status"])
    triggers = []
    for trigger in result["triggers"]:
        line = trigger.get("line")
        if trigger["kind"] == "event" and trigger.get("event") not in EVENT_NAMES:
            raise source_error(line, f"unknown event name {trigger.get('event')!r}")
        if trigger["kind"] == "schedule" and not croniter.is_valid(str(trigger.get("cron"))):
            raise source_error(line, f"invalid cron line {trigger.get('cron')!r}")
        triggers.append({k: v for k, v in trigger.items() if k != "line"})
    return triggers


def _no_reads(message: dict[str, Any]) -> Any:
    raise LookupError("scripts cannot read data at the top level; read inside a handler")


def source_error(line: int | None, message: str) -> ValidationFailed:
    error = ValidationFailed([("source", f"line {line}: {message}" if line else message)])
    error.errors[0]["line"] = line  # type: ignore[assignment]  # SPEC §8: the error names the line
    return error


def next_run(cron: str, after: datetime | None = None) -> str:
    """The next tick of `cron` after `after` (UTC: orgs have no time zone setting yet)."""
    tick = croniter(cron, after or utcnow()).get_next(datetime)
    return iso(tick)


# --- shapes -------------------------------------------------------------------------------


def to_script(row: dict[str, Any], *, detail: bool = False) -> Script:
    triggers = [
        Trigger(**t, next_run_at=next_run(t["cron"]) if t["kind"] == "schedule" else None)
        for t in json.loads(row["triggers"])
    ]
    fields = {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "enabled": bool(row["enabled"]),
        "revision": row["revision"],
        "triggers": triggers,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }
    return ScriptDetail(**fields, source=row["source"]) if detail else Script(**fields)


def to_run(row: dict[str, Any]) -> Run:
    trigger = RunTrigger(
        kind=row["trigger_kind"],
        event=row["trigger_event"],
        seq=row["trigger_seq"],
        at=row["trigger_at"],
        by=row["trigger_by"],
    )
    return Run(
        id=row["id"],
        script=row["script_id"],
        revision=row["revision"],
        trigger=trigger,
        status=row["status"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        logs=row["logs"],
        error=row["error"],
        changes=row["changes"],
    )


def _image(row: dict[str, Any]) -> dict[str, Any]:
    """The change log's post-image of a script (the source included: it is the audit)."""
    return {
        k: row[k]
        for k in ("id", "name", "description", "enabled", "revision", "source", "owner", "version")
    }


# --- create, read, update, delete ---------------------------------------------------------


async def create_script(
    core: Core, access: ProjectAccess, data: ScriptIn, actor: Actor
) -> ScriptDetail:
    project = access.project
    triggers = await compile_source(core, data.source)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        if script_sql.name_taken(uow.conn, project.id, data.name, None):
            raise Conflict("a script with that name exists in this project")
        if data.enabled:
            _start_feed_here(uow)
        row: dict[str, Any] = {
            "id": new_id(),
            "project_id": project.id,
            "name": data.name,
            "description": data.description,
            "enabled": int(data.enabled),
            "revision": 1,
            "source": data.source,
            "triggers": json.dumps(triggers),
            "owner": actor.user_id,
            "created_at": uow.at,
            "updated_at": uow.at,
            "deleted_at": None,
            "version": 1,
        }
        script_sql.insert_script(uow.conn, row)
        _revision(uow, row)
        uow.record(
            Entity.SCRIPT, row["id"], Op.CREATE, project=project.id, new=_image(row), version=1
        )
        return row

    return to_script(await mutate(core, access, actor, work), detail=True)  # type: ignore[return-value]


def _start_feed_here(uow: UnitOfWork) -> None:
    """The first enabled script of an org reacts to changes from now on, not to the whole
    history: its consumer starts at the head (never moves back if already further)."""
    if not script_sql.any_enabled(uow.conn):
        uow.advance_cursor(CONSUMER, change_sql.head(uow.conn))


def _revision(uow: UnitOfWork, row: dict[str, Any]) -> None:
    script_sql.insert_revision(
        uow.conn,
        {
            "script_id": row["id"],
            "revision": row["revision"],
            "source": row["source"],
            "author": row["owner"],
            "created_at": uow.at,
        },
    )


async def list_scripts(core: Core, access: ProjectAccess, query: SubListQuery) -> Page[Script]:
    project = access.project
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else None
    rows = await read(
        core, access, lambda conn: script_sql.list_scripts(conn, project.id, after, query.limit + 1)
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor([rows[-1]["id"]]) if more else None
    return Page[Script](items=[to_script(r) for r in rows], next_cursor=cursor)


async def script_row(core: Core, access: ProjectAccess, script_id: str) -> dict[str, Any]:
    project = access.project
    row = await read(core, access, lambda conn: script_sql.script(conn, project.id, script_id))
    if row is None:
        raise NotFound("script not found")
    return row


async def get_script(core: Core, access: ProjectAccess, script_id: str) -> ScriptDetail:
    return to_script(await script_row(core, access, script_id), detail=True)  # type: ignore[return-value]


async def update_script(
    core: Core,
    access: ProjectAccess,
    script_id: str,
    patch: ScriptPatch,
    actor: Actor,
    if_match: str | None,
) -> ScriptDetail:
    """Named fields only; a new source is compiled first and becomes a new revision."""
    project = access.project
    named = patch.model_fields_set
    triggers = await compile_source(core, patch.source) if "source" in named else None

    def work(uow: UnitOfWork) -> dict[str, Any]:
        row = script_sql.script(uow.conn, project.id, script_id)
        if row is None:
            raise NotFound("script not found")
        if not if_match_ok(if_match, row["version"]):
            raise PreconditionFailed(f"the script is at version {row['version']}")
        if "name" in named and script_sql.name_taken(uow.conn, project.id, patch.name, row["id"]):
            raise Conflict("a script with that name exists in this project")
        fields = _patched(row, patch, named, triggers, actor)
        if not fields:
            return row
        if fields.get("enabled") and not row["enabled"]:
            _start_feed_here(uow)
        after = {**row, **fields, "updated_at": uow.at, "version": row["version"] + 1}
        script_sql.update_script(uow.conn, row["id"], {**fields, "updated_at": uow.at})
        if "source" in fields:
            _revision(uow, after)
        uow.record_fields(
            Entity.SCRIPT,
            row["id"],
            project=project.id,
            before=_image(row),
            after={k: after[k] for k in fields if k in _image(after)},
            version=after["version"],
        )
        return after

    return to_script(await mutate(core, access, actor, work), detail=True)  # type: ignore[return-value]


def _patched(
    row: dict[str, Any],
    patch: ScriptPatch,
    named: set[str],
    triggers: list[dict[str, Any]] | None,
    actor: Actor,
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("name", "description"):
        if name in named and getattr(patch, name) != row[name]:
            fields[name] = getattr(patch, name)
    if "enabled" in named and int(patch.enabled) != row["enabled"]:
        fields["enabled"] = int(patch.enabled)
    if "source" in named and patch.source != row["source"]:
        fields.update(
            source=patch.source,
            triggers=json.dumps(triggers),
            revision=row["revision"] + 1,
            owner=actor.user_id,
        )
    return fields


async def delete_script(core: Core, access: ProjectAccess, script_id: str, actor: Actor) -> None:
    project = access.project

    def work(uow: UnitOfWork) -> None:
        row = script_sql.script(uow.conn, project.id, script_id)
        if row is None:
            raise NotFound("script not found")
        script_sql.update_script(uow.conn, row["id"], {"deleted_at": uow.at, "updated_at": uow.at})
        uow.record(
            Entity.SCRIPT,
            row["id"],
            Op.DELETE,
            project=project.id,
            old=_image(row),
            version=row["version"] + 1,
        )

    await mutate(core, access, actor, work)


# --- revisions and runs -------------------------------------------------------------------


async def list_revisions(
    core: Core, access: ProjectAccess, script_id: str, query: SubListQuery
) -> Page[Revision]:
    await script_row(core, access, script_id)
    before = decode_cursor(query.cursor, (int,))[0] if query.cursor else None
    rows = await read(
        core, access, lambda conn: script_sql.revisions(conn, script_id, before, query.limit + 1)
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor([rows[-1]["revision"]]) if more else None
    return Page[Revision](items=[Revision(**r) for r in rows], next_cursor=cursor)


async def get_revision(core: Core, access: ProjectAccess, script_id: str, number: int) -> Revision:
    await script_row(core, access, script_id)
    row = await read(core, access, lambda conn: script_sql.revision(conn, script_id, number))
    if row is None:
        raise NotFound("revision not found")
    return Revision(**row)


async def list_runs(
    core: Core, access: ProjectAccess, script_id: str, query: SubListQuery
) -> Page[Run]:
    await script_row(core, access, script_id)
    before = decode_cursor(query.cursor, (int,))[0] if query.cursor else None
    rows = await read(
        core, access, lambda conn: script_sql.runs(conn, script_id, before, query.limit + 1)
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    cursor = encode_cursor([rows[-1]["row_id"]]) if more else None
    return Page[Run](items=[to_run(r) for r in rows], next_cursor=cursor)


async def get_run(core: Core, access: ProjectAccess, run_id: str) -> Run:
    project = access.project
    row = await read(core, access, lambda conn: script_sql.run(conn, project.id, run_id))
    if row is None:
        raise NotFound("run not found")
    return to_run(row)


async def script_id_of(core: Core, access: ProjectAccess, ref: str) -> str | None:
    """The id of the script named `ref` (or with id `ref`) in the project; None if none."""
    project = access.project

    def find(conn: Any) -> dict[str, Any] | None:
        return script_sql.script(conn, project.id, ref) or script_sql.script_by_name(
            conn, project.id, ref
        )

    row = await read(core, access, find)
    return None if row is None else str(row["id"])
