"""`ctx.email{to=…, subject=…, body=…}`: a script's email, queued with the run's commit.

The effect is applied like the others, inside the run's unit of work on the
tenant's thread: every recipient (an address or a user id) must be a member of
the script's project — anyone with an effective role there, the rule assignees
and the change feed use — or the effect is refused and the whole run rolls back
(nothing queued). The mail goes into the notification queue (`notify_events`
with no issue, one `notify_pending` row per recipient, reason `script`); the
notification sender mails it without a batching window and, like every
notification, drops it at send time for a recipient whose email is off, who was
disabled or who can no longer see the project. docs/notifications.md.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from tracker.domain.ids import new_id
from tracker.domain.permissions import OrgRole, ProjectRole, effective_project_role
from tracker.services.changes import UnitOfWork
from tracker.storage import assignees as assignee_sql
from tracker.storage import notifications as notify_sql
from tracker.storage import users as user_sql

if TYPE_CHECKING:
    from tracker.services.script_effects import ScriptScope

#: Recipients per run at most (the sandbox counts too: its error names the line).
MAX_EMAILS = 10
MAX_SUBJECT = 200
MAX_BODY = 20_000
#: The summary's event name for a script's email (notify_events.summary).
EVENT = "script.email"


class EmailRefused(ValueError):
    """The email cannot be queued; the message says why (the run log shows it)."""


def emails_in(effects: list[dict[str, Any]]) -> int:
    """How many recipients a run's email effects name."""
    return sum(len(e.get("to") or ()) for e in effects if e.get("kind") == "email")


def queue_email(uow: UnitOfWork, scope: ScriptScope, effect: dict[str, Any]) -> list[str]:
    """Check and queue one `ctx.email`; the recipients' addresses (for a preview)."""
    if not scope.mail_on:
        raise EmailRefused("email is off on this server (RHYTHM_SMTP_URL, RHYTHM_MAIL_FROM)")
    to, subject, body = _fields(effect)
    people = _members(uow.conn, scope, to)
    summary = {
        "event": EVENT,
        "mail_id": new_id(),  # names the Message-ID: queue row ids are reused once deleted
        "script": scope.script_name,
        "script_id": (scope.actor.meta or {}).get("script"),
        "subject": subject,
        "body": body,
    }
    seq = (scope.actor.meta or {}).get("caused_by") or 0
    event = (None, scope.access.project.id, int(seq), uow.at, scope.actor.user_id, summary)
    notify_sql.add_event(uow.conn, event, [(user_id, "script") for user_id in sorted(people)])
    return sorted(people.values())


def _fields(effect: dict[str, Any]) -> tuple[list[str], str, str]:
    """The effect's fields, checked again here: the sandbox's checks are not trusted."""
    to, subject, body = effect.get("to"), effect.get("subject"), effect.get("body")
    if isinstance(to, dict) and not to:  # an empty Lua table
        to = []
    if not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to):
        raise EmailRefused("to must name at least one address or user id")
    if len(to) > MAX_EMAILS:
        raise EmailRefused(f"more than {MAX_EMAILS} emails in one run")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT:
        raise EmailRefused(f"the subject must be 1 to {MAX_SUBJECT} characters")
    if "\r" in subject or "\n" in subject:
        raise EmailRefused("the subject must be one line")
    if not isinstance(body, str) or len(body) > MAX_BODY:
        raise EmailRefused(f"the body must be a string of at most {MAX_BODY} characters")
    return to, subject, body


def _key(name: str) -> str:
    """How a recipient is compared: addresses without case, ids as they are."""
    return name.strip().lower() if "@" in name else name.strip()


def _members(conn: sqlite3.Connection, scope: ScriptScope, to: list[str]) -> dict[str, str]:
    """{user id: email} for every recipient; EmailRefused naming those who are not members
    of the project (unknown addresses and ids included: nobody learns which exist)."""
    addresses = sorted({t.strip().lower() for t in to if "@" in t})
    ids = sorted({t.strip() for t in to if "@" not in t})
    found: dict[str, str] = {}  # user id -> email
    if addresses:
        for row in scope.system_read(lambda c: user_sql.users_by_email(c, addresses)):
            found[row["id"]] = row["email"]
    if ids:
        for row in scope.system_read(lambda c: notify_sql.recipients(c, scope.org_id, ids)):
            found[row["id"]] = row["email"]
    users = sorted(found)
    org_roles = scope.system_read(lambda c: assignee_sql.org_member_roles(c, scope.org_id, users))
    project = scope.access.project
    member_roles = assignee_sql.project_member_roles(conn, project.id, sorted(org_roles))
    members = {
        user_id: found[user_id]
        for user_id, role in org_roles.items()
        if effective_project_role(
            OrgRole(role),
            ProjectRole(member_roles[user_id]) if user_id in member_roles else None,
            project.visibility,
        )
        is not None
    }
    reached = {email.lower() for email in members.values()} | set(members)
    refused = sorted({t for t in to if _key(t) not in reached})
    if refused:
        raise EmailRefused(f"not a member of project {project.key}: {', '.join(refused)}")
    return members
