"""Comments on an issue: list, add, edit (author only), delete (author or project admin).

Also home of the small pieces the other sub-resources share: finding the issue
of a URL inside the unit of work, reading a tenant, and keyset pages.

A comment changes its issue's search entry (comments are indexed with it) and
`comment_count`, all in the comment's own transaction. It also moves the
issue's `updated_at` (activity) but not its `version`: a comment never makes a
concurrent field edit of the issue fail with 412.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import new_id
from tracker.domain.models.base import Page
from tracker.domain.models.comments import Comment, CommentIn, CommentPatch, SubListQuery
from tracker.domain.permissions import ProjectRole
from tracker.domain.versions import if_match_ok
from tracker.errors import Forbidden, NotFound, PreconditionFailed, ValidationFailed
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.storage import comments as comment_sql
from tracker.storage.issues import issue_by_number
from tracker.storage.search_index import index_issue, unindex_issue

T = TypeVar("T")


def issue_in(
    conn: sqlite3.Connection, project_id: str, number: int, *, include_deleted: bool = False
) -> sqlite3.Row:
    """The issue of a URL, read inside the caller's unit of work; NotFound when absent."""
    row = issue_by_number(conn, project_id, number, include_deleted=include_deleted)
    if row is None:
        raise NotFound("issue not found")
    return row


def is_project_admin(access: ProjectAccess) -> bool:
    return access.project.role is ProjectRole.ADMIN


def cursor_key(query: SubListQuery) -> tuple[str, str] | None:
    """The (sort value, tie-breaker) a two-part cursor carries."""
    if not query.cursor:
        return None
    first, second = decode_cursor(query.cursor, (str, str))
    return first, second


def page_of(
    rows: list[dict[str, Any]], limit: int, key: Callable[[dict[str, Any]], list[str]]
) -> tuple[list[dict[str, Any]], str | None]:
    """Trim `limit + 1` fetched rows to a page; the extra row only says there is more."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(key(rows[-1]))


async def list_comments(
    core: Core, access: ProjectAccess, number: int, query: SubListQuery
) -> Page[Comment]:
    """Oldest first. Project admins may still read the comments of a soft-deleted issue."""
    project, admin = access.project, is_project_admin(access)
    key = cursor_key(query)
    after = (key[0], _row_id(key[1])) if key else None

    def fetch(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        issue = issue_in(conn, project.id, number, include_deleted=admin)
        return comment_sql.list_comments(conn, issue["id"], after, query.limit + 1)

    rows, next_cursor = page_of(
        await read(core, access, fetch),
        query.limit,
        lambda r: [r["created_at"], str(r["row_id"])],
    )
    return Page[Comment](items=[_comment(row) for row in rows], next_cursor=next_cursor)


async def create_comment(
    core: Core, access: ProjectAccess, number: int, body: CommentIn, actor: Actor
) -> Comment:
    """Add a comment; the same call serves the API and `rhythm issue comment`."""
    return await mutate(
        core, access, actor, lambda uow: comment_in(uow, access, number, body, actor)
    )


def comment_in(
    uow: UnitOfWork, access: ProjectAccess, number: int, body: CommentIn, actor: Actor,
    *, comment_id: str | None = None,
) -> Comment:  # fmt: skip
    """The comment itself, inside the caller's unit of work (scripts apply effects with it);
    `comment_id`: an id made by an offline replica (sync)."""
    project = access.project
    issue = issue_in(uow.conn, project.id, number)
    row = {
        "id": comment_id or new_id(), "issue_id": issue["id"], "author": actor.user_id or "",
        "body": body.body, "created_at": uow.at, "updated_at": uow.at, "version": 1,
    }  # fmt: skip
    with reindexed(uow.conn, issue["row_id"]):
        comment_sql.insert_comment(uow.conn, row)
    comment_sql.add_to_comment_count(uow.conn, issue["row_id"], 1, uow.at)
    uow.record(Entity.COMMENT, row["id"], Op.CREATE, project=project.id, new=row,
               version=1, issue=issue["id"])  # fmt: skip
    return _comment(row)


async def update_comment(
    core: Core,
    access: ProjectAccess,
    number: int,
    comment_id: str,
    patch: CommentPatch,
    if_match: str | None,
    actor: Actor,
) -> Comment:
    """Only the author edits a comment (admins may delete, not rewrite, others' words)."""
    return await mutate(
        core, access, actor,
        lambda uow: update_comment_in(uow, access, number, comment_id, patch, if_match, actor),
    )  # fmt: skip


def update_comment_in(
    uow: UnitOfWork, access: ProjectAccess, number: int, comment_id: str, patch: CommentPatch,
    if_match: str | None, actor: Actor,
) -> Comment:  # fmt: skip
    """The edit inside the caller's unit of work (sync push applies it so)."""
    project = access.project
    issue = issue_in(uow.conn, project.id, number)
    comment = _comment_in(uow.conn, issue["id"], comment_id)
    if comment["author"] != actor.user_id:
        raise Forbidden("only the author can edit a comment")
    if not if_match_ok(if_match, comment["version"]):
        raise PreconditionFailed(f"the comment is at version {comment['version']}")
    if patch.body == comment["body"]:
        return _comment(comment)
    after = {**comment, "body": patch.body, "updated_at": uow.at,
             "version": comment["version"] + 1}  # fmt: skip
    with reindexed(uow.conn, issue["row_id"]):
        comment_sql.update_body(uow.conn, comment_id, patch.body, uow.at)
    comment_sql.add_to_comment_count(uow.conn, issue["row_id"], 0, uow.at)
    uow.record_fields(Entity.COMMENT, comment_id, project=project.id,
                      before={"body": comment["body"]}, after={"body": patch.body},
                      version=after["version"], issue=issue["id"])  # fmt: skip
    return _comment(after)


async def delete_comment(
    core: Core, access: ProjectAccess, number: int, comment_id: str, actor: Actor
) -> None:
    """The author or a project admin removes a comment; the log keeps its last text."""
    await mutate(
        core, access, actor, lambda uow: delete_comment_in(uow, access, number, comment_id, actor)
    )


def delete_comment_in(
    uow: UnitOfWork, access: ProjectAccess, number: int, comment_id: str, actor: Actor
) -> None:
    """The delete inside the caller's unit of work (sync push applies it so)."""
    project, admin = access.project, is_project_admin(access)
    issue = issue_in(uow.conn, project.id, number)
    comment = _comment_in(uow.conn, issue["id"], comment_id)
    if comment["author"] != actor.user_id and not admin:
        raise Forbidden("only the author or a project admin can delete a comment")
    with reindexed(uow.conn, issue["row_id"]):
        comment_sql.delete_comment(uow.conn, comment_id)
    comment_sql.add_to_comment_count(uow.conn, issue["row_id"], -1, uow.at)
    uow.record(Entity.COMMENT, comment_id, Op.DELETE, project=project.id, old=comment,
               version=comment["version"], issue=issue["id"])  # fmt: skip


@contextmanager
def reindexed(conn: sqlite3.Connection, row_id: int) -> Iterator[None]:
    """Remove the issue's search entry before a comment change and re-add it after."""
    unindex_issue(conn, row_id)
    yield
    index_issue(conn, row_id)


def _row_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ValidationFailed([("query.cursor", "not a cursor this list handed out")])
    return int(text)


def _comment_in(conn: sqlite3.Connection, issue_id: str, comment_id: str) -> dict[str, Any]:
    comment = comment_sql.comment_of_issue(conn, issue_id, comment_id)
    if comment is None:
        raise NotFound("comment not found")
    return comment


def _comment(row: dict[str, Any]) -> Comment:
    return Comment(**row)
