"""Issue work for the command line: what `rhythm issue ...` parses before the services.

The CLI holds the data directory, so it acts with operator rights (`act_as`
without a permission); `--as EMAIL` names the user recorded as reporter,
author and change-log actor (origin `cli`). Issues are named by key
(`WEB-42`), as people name them; custom fields come as NAME=VALUE text and
are typed against the project's field definitions; input is validated with
the API's own models, so errors name the same fields.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tracker.core import Core
from tracker.domain.changes import Actor, Origin
from tracker.domain.custom_fields import FieldDef, from_text
from tracker.domain.models.base import Page
from tracker.domain.models.comments import Comment, CommentIn
from tracker.domain.models.imports import ImportReport
from tracker.domain.models.issues import (
    Issue,
    IssueCreate,
    IssueListQuery,
    IssuePatch,
    parse_issue_ref,
)
from tracker.domain.versions import etag_of
from tracker.errors import NotFound, ValidationFailed
from tracker.services import comments, import_files, issue_lists, issues
from tracker.services.access import ProjectAccess
from tracker.services.acting import act_as
from tracker.services.custom_fields import list_fields

M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, Any]) -> M:
    """Validate command-line input with the API's own model; errors name the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None


def someone(actor: Actor, what: str = "does this") -> None:
    """Creating, commenting and importing need a person to record (`--as EMAIL`)."""
    if actor.user_id is None:
        raise ValidationFailed([("--as", f"name the user who {what} (--as EMAIL)")])


async def _by_key(
    core: Core, org: str, key: str, email: str | None
) -> tuple[ProjectAccess, Actor, int]:
    try:
        project_key, number = parse_issue_ref(key)
    except ValueError:
        raise ValidationFailed([("key", "expected an issue key such as WEB-42")]) from None
    if project_key is None:
        raise ValidationFailed([("key", "expected an issue key such as WEB-42")])
    access, actor = await act_as(core, org, project_key, email, Origin.CLI)
    return access, actor, number


async def _typed_fields(core: Core, access: ProjectAccess, raw: dict[str, str]) -> dict[str, Any]:
    if not raw:
        return {}
    definitions = await list_fields(core, access)
    defs = [FieldDef(f.id, f.name, f.type, tuple(f.options), f.required) for f in definitions]
    return from_text(defs, raw)


async def create_issue(
    core: Core, org: str, project: str, data: dict[str, Any], fields: dict[str, str],
    email: str | None,
) -> Issue:  # fmt: skip
    """Create an issue; `data` are IssueCreate fields, `fields` raw NAME=VALUE custom values."""
    access, actor = await act_as(core, org, project, email, Origin.CLI)
    someone(actor)
    body = validated(
        IssueCreate, {**data, "custom_fields": await _typed_fields(core, access, fields)}
    )
    return await issues.create_issue(core, access, body, actor)


async def list_issues(
    core: Core, org: str, project: str, filters: dict[str, Any], email: str | None
) -> Page[Issue]:
    """One page of a project's issues; `filters` are IssueListQuery fields (None: unset)."""
    query = validated(IssueListQuery, {k: v for k, v in filters.items() if v is not None})
    access, _ = await act_as(core, org, project, email, Origin.CLI)
    return await issue_lists.list_issues(core, access, query)


async def show_issue(core: Core, org: str, key: str, email: str | None) -> Issue:
    access, _, number = await _by_key(core, org, key, email)
    return await issues.get_issue(core, access, number)


async def update_issue(
    core: Core, org: str, key: str, data: dict[str, Any], fields: dict[str, str],
    email: str | None, if_version: int | None = None,
) -> Issue:  # fmt: skip
    """Change the named fields; with `if_version`, refuse (412) if someone changed it since."""
    access, actor, number = await _by_key(core, org, key, email)
    if fields:
        data = {**data, "custom_fields": await _typed_fields(core, access, fields)}
    patch = validated(IssuePatch, data)
    if_match = None if if_version is None else etag_of(if_version)
    return await issues.update_issue(core, access, number, patch, actor, if_match)


async def comment(core: Core, org: str, key: str, body: str, email: str | None) -> Comment:
    access, actor, number = await _by_key(core, org, key, email)
    someone(actor)
    data = validated(CommentIn, {"body": body})
    try:
        return await comments.create_comment(core, access, number, data, actor)
    except NotFound:
        raise NotFound(f"no issue {key.upper()}") from None


async def import_file(
    core: Core, org: str, project_key: str, path: Path, email: str | None, *,
    unknown_users_as_me: bool = False, progress: Callable[[int], None] | None = None,
) -> ImportReport:  # fmt: skip
    """`rhythm issue import`: operator rights on the data directory, `--as EMAIL` acts."""
    access, actor = await act_as(core, org, project_key, email, Origin.CLI)
    someone(actor, "imports")
    return await import_files.import_file(
        core, access, actor, path, unknown_users_as_me=unknown_users_as_me, progress=progress
    )


async def issue_by_key(
    core: Core, org: str, key: str, email: str | None
) -> tuple[ProjectAccess, Actor, int]:
    """(access, actor, issue number) for a key such as WEB-42, acting as `email`."""
    return await _by_key(core, org, key, email)
