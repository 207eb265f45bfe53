"""What every sync mutation handler shares: the definition type, the context a
handler runs with, refusals, target lookups and the issue helpers (docs/sync.md).

The handlers live in `sync_mutations_issues.py` and `sync_mutations_links.py`; the
registry that joins them is `sync_mutations.py`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from tracker.domain.changes import Actor
from tracker.domain.ids import is_uuid
from tracker.domain.models.base import Input
from tracker.domain.models.issues import IssuePatch
from tracker.domain.permissions import Permission
from tracker.domain.text_merge import merge_text
from tracker.errors import RhythmError, ValidationFailed
from tracker.services import issues as issue_svc
from tracker.services import tags as tag_svc
from tracker.services.access import ProjectAccess
from tracker.services.changes import UnitOfWork
from tracker.services.runtime import Core
from tracker.storage import sync as sync_sql

Uuid = str


class Rejected(RhythmError):
    """A sync-specific refusal of one mutation (`code` is the result's problem code)."""

    def __init__(self, code: str, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.sync_code, self.sync_status, self.sync_title = code, status, title


def check_uuid(value: str, name: str) -> None:
    if not is_uuid(value):
        raise ValidationFailed([(f"args.{name}", "must be a lower-case hyphenated UUID")])


@dataclass(frozen=True)
class Target:
    """Where a mutation lands: the project (key for act_as) and the issue, when any."""

    project_key: str
    issue: sqlite3.Row | None = None
    row: sqlite3.Row | None = None  # the comment/tag a mutation names, when it names one


@dataclass
class Ctx:
    """One mutation being applied: its arguments, access and actor."""

    core: Core
    args: Any
    access: ProjectAccess
    actor: Actor
    client_id: str
    target: Target
    #: what `prepare` resolved for `apply` (e.g. a relation's other side)
    extra: dict[str, Any] = field(default_factory=dict)


Locate = Callable[[sqlite3.Connection, Any], Target]
Prepare = Callable[[Ctx], Awaitable[None]]
Apply = Callable[[Ctx, UnitOfWork], dict[str, Any]]


@dataclass(frozen=True)
class MutationDef:
    name: str
    v: int
    permission: Permission
    rest: tuple[str, str]  # the REST twin: (method, path below /api/v1)
    args: type[BaseModel]
    locate: Locate
    apply: Apply
    prepare: Prepare | None = None
    #: which target states count as "deleted" for this mutation (restore wants them)
    on_deleted: bool = False


# --- locating targets ---------------------------------------------------------------------


def not_found(what: str) -> Rejected:
    return Rejected(
        "not_found", 404, "Not found", f"{what} not found (or no longer visible to you)"
    )


def issue_target(conn: sqlite3.Connection, issue_id: str) -> Target:
    check_uuid(issue_id, "id")
    row = sync_sql.issue_by_id(conn, issue_id)
    if row is None:
        raise not_found("issue")
    return Target(str(row["project_key"]), row)


def project_target(conn: sqlite3.Connection, project_id: str) -> Target:
    check_uuid(project_id, "project_id")
    key = sync_sql.project_key_of(conn, project_id)
    if key is None:
        raise not_found("project")
    return Target(key)


def live_issue(ctx: Ctx, uow: UnitOfWork) -> sqlite3.Row:
    """The target issue as it is now in this transaction; delete wins over any edit."""
    assert ctx.target.issue is not None
    row = sync_sql.issue_by_id(uow.conn, ctx.target.issue["id"])
    if row is None or row["project_id"] != ctx.access.project.id:
        raise not_found("issue")
    if row["deleted_at"] is not None:
        key = f"{ctx.access.project.key}-{row['number']}"
        raise Rejected(
            "target_deleted",
            410,
            "Deleted meanwhile",
            f"{key} was deleted at {row['deleted_at']}; your change was not applied",
        )
    return row


def issue_patch(data: dict[str, Any]) -> IssuePatch:
    try:
        return IssuePatch.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="args.") from None


def update_issue(ctx: Ctx, uow: UnitOfWork, number: int, patch: IssuePatch) -> None:
    issue_svc.update_in(uow, ctx.access, number, patch, uow.actor, None,
                        tag_svc.may_create_tags(ctx.access))  # fmt: skip


def add_meta(uow: UnitOfWork, **meta: Any) -> None:
    """Add to the meta every change row of this mutation carries (conflict, merge)."""
    uow.actor = replace(uow.actor, meta={**(uow.actor.meta or {}), **meta})


def merged(
    uow: UnitOfWork, base: str, current: str, mine: str
) -> tuple[dict[str, Any], str | None]:
    """(result fields, text to store or None) of a 3-way text merge."""
    outcome, text = merge_text(base, current, mine)
    if outcome == "noop":
        return {"status": "noop"}, None
    if outcome == "kept_both":
        draft = {"base": base, "text": mine, "current": current}
        return {"status": "kept_both", "draft": draft}, None
    if outcome == "merged":
        add_meta(uow, merge="clean")
    return {"status": outcome}, text


class IdArgs(Input):
    id: Uuid = Field(min_length=36, max_length=36)


class AlreadyDone(Exception):
    """The mutation's effect already holds and its target is gone: answer `noop`."""


ISSUE_PATH = "/orgs/{org}/projects/{project}/issues/{n}"


def by_issue_id(conn: sqlite3.Connection, args: Any) -> Target:
    return issue_target(conn, args.id)


def by_issue_ref(conn: sqlite3.Connection, args: Any) -> Target:
    return issue_target(conn, args.issue_id)


def by_project(conn: sqlite3.Connection, args: Any) -> Target:
    return project_target(conn, args.project_id)
