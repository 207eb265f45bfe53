"""Issue work for the command line: what `rhythm issue ...` parses before the services.

The CLI holds the data directory: without a person it acts with operator rights;
`--as EMAIL` acts as that person with their own roles, decided by the permission
of the matching API route (`act_as(..., permission=...)`), exactly as over HTTP,
and records them as reporter, author and change-log actor (origin `cli`). Each
function calls one service function (plus look-ups of people and sprints by
name); none repeats a rule.
People are named by email (cli/people.py), sprints by name or id. Issues are named by key
(`WEB-42`), as people name them; custom fields come as NAME=VALUE text and
are typed against the project's field definitions; input is validated with
the API's own models, so errors name the same fields.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from cli.people import ids_of, names_of
from tracker.core import Core
from tracker.domain.changes import Actor, Origin
from tracker.domain.custom_fields import FieldDef, from_text
from tracker.domain.models.base import Page
from tracker.domain.models.comments import (
    Comment,
    CommentIn,
    Relation,
    RelationIn,
    SubListQuery,
    TimeEntry,
    TimeEntryIn,
)
from tracker.domain.models.issues import (
    HistoryItem,
    Issue,
    IssueCreate,
    IssueListQuery,
    IssuePatch,
    PageQuery,
    parse_issue_ref,
)
from tracker.domain.permissions import Permission
from tracker.domain.versions import etag_of
from tracker.errors import NotFound, ValidationFailed
from tracker.services import issue_lists, issues
from tracker.services.access import ProjectAccess
from tracker.services.acting import act_as

if TYPE_CHECKING:
    from tracker.domain.models.imports import ImportReport
    from tracker.domain.models.notifications import Watch, Watcher

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
    core: Core, org: str, key: str, email: str | None, permission: Permission | None = None
) -> tuple[ProjectAccess, Actor, int]:
    try:
        project_key, number = parse_issue_ref(key)
    except ValueError:
        raise ValidationFailed([("key", "expected an issue key such as WEB-42")]) from None
    if project_key is None:
        raise ValidationFailed([("key", "expected an issue key such as WEB-42")])
    access, actor = await act_as(core, org, project_key, email, Origin.CLI, permission=permission)
    return access, actor, number


async def _typed_fields(core: Core, access: ProjectAccess, raw: dict[str, str]) -> dict[str, Any]:
    from tracker.services.custom_fields import list_fields

    if not raw:
        return {}
    definitions = await list_fields(core, access)
    defs = [FieldDef(f.id, f.name, f.type, tuple(f.options), f.required) for f in definitions]
    return from_text(defs, raw)


async def _sprint_id(core: Core, access: ProjectAccess, ref: str | None) -> dict[str, Any]:
    """`--sprint NAME|ID` -> {"sprint_id": id}; `none` -> {"sprint_id": None}; absent -> {}."""
    from tracker.services import sprints

    if ref is None:
        return {}
    if ref.strip().lower() == "none":
        return {"sprint_id": None}
    return {"sprint_id": await sprints.sprint_ref(core, access, ref)}


async def _assignees(core: Core, people: list[str] | None) -> dict[str, Any]:
    return {} if people is None else {"assignees": await ids_of(core, people)}


async def create_issue(
    core: Core, org: str, project: str, data: dict[str, Any], fields: dict[str, str],
    email: str | None, *, assignees: list[str] | None = None, sprint: str | None = None,
) -> Issue:  # fmt: skip
    """Create an issue; `data` are IssueCreate fields, `fields` raw NAME=VALUE custom values."""
    access, actor = await act_as(
        core, org, project, email, Origin.CLI, permission=Permission.ISSUE_CREATE
    )
    someone(actor)
    body = validated(
        IssueCreate,
        {
            **data, **await _assignees(core, assignees), **await _sprint_id(core, access, sprint),
            "custom_fields": await _typed_fields(core, access, fields),
        },
    )  # fmt: skip
    return await issues.create_issue(core, access, body, actor)


async def list_issues(
    core: Core, org: str, project: str, filters: dict[str, Any], email: str | None
) -> tuple[Page[Issue], dict[str, str]]:
    """One page of a project's issues and the names of the people on it.

    `filters` are IssueListQuery fields (None: unset); `assignee` names people by
    email (comma-separated, or `none`), `sprint` sprints by name or id."""
    from tracker.services import sprints

    filters = {k: v for k, v in filters.items() if v is not None}
    access, _ = await act_as(
        core, org, project, email, Origin.CLI, permission=Permission.PROJECT_READ
    )
    if "assignee" in filters:
        names = [n.strip() for n in str(filters["assignee"]).split(",") if n.strip()]
        filters["assignee"] = ",".join(
            [n for n in names if n.lower() == "none"]
            + await ids_of(core, [n for n in names if n.lower() != "none"])
        )
    if "sprint" in filters:
        refs = [n.strip() for n in str(filters["sprint"]).split(",") if n.strip()]
        filters["sprint"] = ",".join(
            [r if r.lower() == "none" else await sprints.sprint_ref(core, access, r) for r in refs]
        )
    query = validated(IssueListQuery, filters)
    page = await issue_lists.list_issues(core, access, query)
    people = {u for i in page.items for u in (*i.assignees, i.reporter)}
    return page, await names_of(core, people)


async def show_issue(
    core: Core, org: str, key: str, email: str | None
) -> tuple[Issue, list[Comment], dict[str, str]]:
    """The issue, its first comments and the names of everyone on it."""
    from tracker.services import comments

    access, _, number = await _by_key(core, org, key, email, Permission.PROJECT_READ)
    issue = await issues.get_issue(core, access, number)
    found = await comments.list_comments(core, access, number, SubListQuery(limit=200))
    people = {*issue.assignees, issue.reporter, *(c.author for c in found.items)}
    return issue, found.items, await names_of(core, people)


async def update_issue(
    core: Core, org: str, key: str, data: dict[str, Any], fields: dict[str, str],
    email: str | None, if_version: int | None = None, *,
    assignees: list[str] | None = None, sprint: str | None = None,
) -> Issue:  # fmt: skip
    """Change the named fields; with `if_version`, refuse (412) if someone changed it since."""
    access, actor, number = await _by_key(core, org, key, email, Permission.ISSUE_CREATE)
    data = {**data, **await _assignees(core, assignees), **await _sprint_id(core, access, sprint)}
    if fields:
        data = {**data, "custom_fields": await _typed_fields(core, access, fields)}
    patch = validated(IssuePatch, data)
    if_match = None if if_version is None else etag_of(if_version)
    return await issues.update_issue(core, access, number, patch, actor, if_match)


async def delete_issue(
    core: Core, org: str, key: str, email: str | None, if_version: int | None = None
) -> None:
    access, actor, number = await _by_key(core, org, key, email, Permission.ISSUE_DELETE)
    if_match = None if if_version is None else etag_of(if_version)
    await issues.delete_issue(core, access, number, actor, if_match)


async def restore_issue(core: Core, org: str, key: str, email: str | None) -> Issue:
    access, actor, number = await _by_key(core, org, key, email, Permission.ISSUE_DELETE)
    return await issues.restore_issue(core, access, number, actor)


async def comment(core: Core, org: str, key: str, body: str, email: str | None) -> Comment:
    from tracker.services import comments

    access, actor, number = await _by_key(core, org, key, email, Permission.COMMENT_CREATE)
    someone(actor)
    data = validated(CommentIn, {"body": body})
    try:
        return await comments.create_comment(core, access, number, data, actor)
    except NotFound:
        raise NotFound(f"no issue {key.upper()}") from None


async def edit_comment(
    core: Core, org: str, key: str, comment_id: str, body: str, email: str | None
) -> Comment:
    """`rhythm issue comment-edit`: the REST PATCH's service call (only the author edits)."""
    from tracker.domain.models.comments import CommentPatch
    from tracker.services import comments

    access, actor, number = await _by_key(core, org, key, email, Permission.COMMENT_CREATE)
    someone(actor, "wrote the comment")
    data = validated(CommentPatch, {"body": body})
    try:
        return await comments.update_comment(core, access, number, comment_id, data, None, actor)
    except NotFound as missing:
        if missing.detail == "comment not found":
            raise NotFound(f"no comment {comment_id} on {key.upper()}") from None
        raise NotFound(f"no issue {key.upper()}") from None


async def list_comments(
    core: Core, org: str, key: str, email: str | None, limit: int
) -> tuple[Page[Comment], dict[str, str]]:
    from tracker.services import comments

    access, _, number = await _by_key(core, org, key, email, Permission.PROJECT_READ)
    page = await comments.list_comments(core, access, number, SubListQuery(limit=limit))
    return page, await names_of(core, (c.author for c in page.items))


async def issue_history(
    core: Core, org: str, key: str, email: str | None, limit: int
) -> tuple[Page[HistoryItem], dict[str, str]]:
    from tracker.services import history

    access, _, number = await _by_key(core, org, key, email, Permission.PROJECT_READ)
    page = await history.issue_history(core, access, number, PageQuery(limit=limit))
    return page, await names_of(core, (h.actor for h in page.items))


async def link(
    core: Core, org: str, key: str, kind: str, other: str, email: str | None
) -> Relation:
    """`rhythm issue link WEB-1 blocks WEB-2`."""
    from tracker.services import relations

    access, actor, number = await _by_key(core, org, key, email, Permission.ISSUE_UPDATE)
    data = validated(RelationIn, {"type": kind, "issue": other.strip().upper()})
    return await relations.create_relation(core, access, number, data, actor)


async def unlink(core: Core, org: str, key: str, other: str, email: str | None) -> list[str]:
    """Remove every link between the two issues; the relation ids removed."""
    from tracker.services import relations

    access, actor, number = await _by_key(core, org, key, email, Permission.ISSUE_UPDATE)
    page = await relations.list_relations(core, access, number, SubListQuery(limit=200))
    wanted = other.strip().upper()
    found = [r for r in page.items if r.issue.upper() == wanted]
    if not found:
        raise NotFound(f"{key.upper()} is not linked to {wanted}")
    for relation in found:
        await relations.delete_relation(core, access, number, relation.id, actor)
    return [r.id for r in found]


async def list_links(core: Core, org: str, key: str, email: str | None) -> list[Relation]:
    from tracker.services import relations

    access, _, number = await _by_key(core, org, key, email, Permission.PROJECT_READ)
    return (await relations.list_relations(core, access, number, SubListQuery(limit=200))).items


async def log_time(
    core: Core, org: str, key: str, seconds: int, note: str, email: str | None
) -> TimeEntry:
    from tracker.services import time_entries

    access, actor, number = await _by_key(core, org, key, email, Permission.TIME_LOG)
    someone(actor, "spent the time")
    data = validated(TimeEntryIn, {"seconds_spent": seconds, "description": note})
    return await time_entries.log_time(core, access, number, data, actor)


async def watch(core: Core, org: str, key: str, email: str | None, watching: bool) -> Watch:
    """The person's own choice: watch (`True`) or unwatch an issue."""
    from tracker.services import watchers

    access, actor, number = await _by_key(core, org, key, email, Permission.PROJECT_READ)
    someone(actor, "watches")
    return await watchers.set_my_watch(core, access, number, actor, watching)


async def list_watchers(core: Core, org: str, key: str, email: str | None) -> Page[Watcher]:
    from tracker.services import watchers

    access, _, number = await _by_key(core, org, key, email, Permission.PROJECT_READ)
    return await watchers.list_watchers(core, access, number)


async def import_file(
    core: Core, org: str, project_key: str, path: Path, email: str | None, *,
    unknown_users_as_me: bool = False, progress: Callable[[int], None] | None = None,
) -> ImportReport:  # fmt: skip
    """`rhythm issue import`: operator rights on the data directory, `--as EMAIL` acts."""
    from tracker.services import import_files  # the import machinery only when importing

    access, actor = await act_as(
        core, org, project_key, email, Origin.CLI, permission=Permission.ISSUE_IMPORT
    )
    someone(actor, "imports")
    return await import_files.import_file(
        core, access, actor, path, unknown_users_as_me=unknown_users_as_me, progress=progress
    )


async def issue_by_key(
    core: Core, org: str, key: str, email: str | None, permission: Permission
) -> tuple[ProjectAccess, Actor, int]:
    """(access, actor, issue number) for a key such as WEB-42, acting as `email` with
    the rights the matching route needs (`permission`)."""
    return await _by_key(core, org, key, email, permission)
