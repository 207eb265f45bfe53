"""Watchers of an issue: derived (reporter, assignees, commenters) plus explicit choices.

Implicit watchers are derived from the issue's own tables when someone asks, so
they can never drift from the data; only explicit choices are stored
(`issue_watchers`, change-logged as entity `issue_watcher`). An explicit
unwatch silences a person's implicit reasons until they watch again. Watching
needs read access to the issue (the route's permission is `project.read`).
"""

from __future__ import annotations

import sqlite3

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.models.base import Page
from tracker.domain.models.notifications import Watch, Watcher
from tracker.errors import NotFound
from tracker.services.access import ProjectAccess, read
from tracker.services.assignees import invisible_users
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.comments import issue_in
from tracker.services.runtime import Core
from tracker.storage import users as user_sql
from tracker.storage import watchers as watcher_sql
from tracker.storage.issues import issue_by_number


def _watch(reasons: list[str], choice: bool | None) -> Watch:
    implicit = [r for r in reasons if r != "watching"]
    watching = bool(implicit) if choice is None else choice
    return Watch(
        watching=watching,
        reasons=[*implicit, "watching"] if choice else implicit,
        choice=None if choice is None else ("watch" if choice else "unwatch"),
    )


async def my_watch(core: Core, access: ProjectAccess, number: int, user_id: str) -> Watch:
    """Whether the caller watches the issue, and why."""

    def fetch(conn: sqlite3.Connection) -> Watch:
        issue = issue_in(conn, access.project.id, number)
        reasons = watcher_sql.reasons(conn, issue["id"]).get(user_id, [])
        return _watch(reasons, watcher_sql.choice_of(conn, issue["id"], user_id))

    return await read(core, access, fetch)


async def set_my_watch(
    core: Core, access: ProjectAccess, number: int, actor: Actor, watching: bool
) -> Watch:
    """PUT (watch) or DELETE (unwatch) the caller's choice; a repeat changes nothing."""
    project = access.project
    user_id = actor.user_id
    if user_id is None:
        raise NotFound("issue not found")

    def work(uow: UnitOfWork) -> Watch:
        issue = issue_in(uow.conn, project.id, number)
        before = watcher_sql.choice_of(uow.conn, issue["id"], user_id)
        if before is not watching:
            watcher_sql.set_choice(uow.conn, issue["id"], user_id, watching, uow.at)
            link = {"issue_id": issue["id"], "user_id": user_id}
            entity_id = f"{issue['id']}:{user_id}"
            if before is None:
                uow.record(Entity.ISSUE_WATCHER, entity_id, Op.CREATE, project=project.id,
                           new={**link, "watching": watching})  # fmt: skip
            else:
                uow.record(Entity.ISSUE_WATCHER, entity_id, Op.UPDATE, project=project.id,
                           field="watching", old=before, new=watching)  # fmt: skip
        reasons = watcher_sql.reasons(uow.conn, issue["id"]).get(user_id, [])
        return _watch(reasons, watching)

    return await mutate(core, access, actor, work)


async def list_watchers(core: Core, access: ProjectAccess, number: int) -> Page[Watcher]:
    """Everyone who gets email about the issue and can still see the project."""

    def fetch(conn: sqlite3.Connection) -> dict[str, list[str]] | None:
        issue = issue_by_number(conn, access.project.id, number)
        if issue is None:
            return None
        reasons = watcher_sql.reasons(conn, issue["id"])
        choices = watcher_sql.choices(conn, issue["id"])
        return {u: r for u, r in reasons.items() if choices.get(u) is not False}

    found = await read(core, access, fetch)
    if found is None:
        raise NotFound("issue not found")
    hidden = await invisible_users(core, access, found)
    ids = sorted(u for u in found if u not in hidden)
    rows = await core.system.read(lambda conn: user_sql.users_by_ids(conn, ids))
    by_id = {r["id"]: r for r in rows}
    items = [
        Watcher(
            id=u,
            email=by_id[u]["email"],
            display_name=by_id[u]["display_name"],
            reasons=found[u],
        )
        for u in ids
        if u in by_id
    ]
    return Page[Watcher](items=items, next_cursor=None)
