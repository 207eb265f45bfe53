"""Notifications, the pure part: @mentions, what a change group says, and the email.

The feed consumer (services/notify_queue.py) turns each (batch, issue) group of
the change log into a `summary` (event name + changes, long values trimmed) and
finds who is addressed directly (mentions, assignee links); the sender
(services/notify_send.py) composes one email per person and issue from the
summaries gathered in a window. See docs/notifications.md.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from tracker.domain.changes import Change, Entity, Op
from tracker.domain.events import Group, changes_of, event_name

#: `@ann` (the local part of a member's email) or `@ann@example.com` (the whole
#: address). Not preceded by a word character, so `bob@example.com` in running
#: text is an address, not a mention of `example.com`.
MENTION_RE = re.compile(
    r"(?<![\w.+\-/@])@([A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}(?:@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)?)"
)

#: Fields whose changes nobody wants an email about (board drags, backlog order).
QUIET_FIELDS = frozenset({"rank", "backlog_rank"})

#: Longest text value kept in a queued summary (a description can be 100 KB).
MAX_VALUE_CHARS = 1000


def mentions(text: str | None) -> set[str]:
    """The lower-cased names mentioned in `text` (local parts or whole addresses)."""
    if not text:
        return set()
    return {m.rstrip(".").lower() for m in MENTION_RE.findall(text)}


def new_mentions(old: Any, new: Any) -> set[str]:
    """Mentions in `new` that `old` did not have (an edit notifies only who it adds)."""
    return mentions(new if isinstance(new, str) else None) - mentions(
        old if isinstance(old, str) else None
    )


def trim(value: Any) -> Any:
    """Long strings shortened (…), dicts and lists trimmed inside: what a queue row keeps."""
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"
    if isinstance(value, dict):
        return {k: trim(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trim(v) for v in value[:50]]
    return value


@dataclass(frozen=True)
class Notice:
    """What one (batch, issue) group means for notifications."""

    issue: str
    project: str
    seq: int
    at: str
    actor: str | None
    summary: dict[str, Any]
    #: lower-cased mention tokens added by this group (resolved to members later)
    mentioned: frozenset[str] = frozenset()
    #: people assigned or unassigned by this group (told even if they muted the issue)
    assigned: frozenset[str] = frozenset()


def notice_of(group: Group) -> Notice | None:
    """The notice of an issue group; None for groups nobody is told about."""
    issue = group.issue
    if issue is None:
        return None
    kept = tuple(c for c in group.changes if c.field not in QUIET_FIELDS)
    if not kept:
        return None
    group = Group(group.project, issue, kept)
    first = kept[0]
    summary = {"event": event_name(group), "changes": [trim(c) for c in changes_of(group)]}
    return Notice(
        issue=issue,
        project=group.project,
        seq=group.seq,
        at=first.at,
        actor=first.actor,
        summary=summary,
        mentioned=frozenset(_mentioned(kept)),
        assigned=frozenset(_assigned(kept)),
    )


def _mentioned(changes: Iterable[Change]) -> set[str]:
    found: set[str] = set()
    for change in changes:
        if change.entity == Entity.COMMENT and change.op == Op.CREATE:
            found |= mentions((change.new or {}).get("body"))
        elif change.entity == Entity.COMMENT and change.field == "body":
            found |= new_mentions(change.old, change.new)
        elif change.entity == Entity.ISSUE and change.op == Op.CREATE:
            found |= mentions((change.new or {}).get("description"))
        elif change.entity == Entity.ISSUE and change.field == "description":
            found |= new_mentions(change.old, change.new)
    return found


def _assigned(changes: Iterable[Change]) -> set[str]:
    found: set[str] = set()
    for change in changes:
        if change.entity == Entity.ISSUE_ASSIGNEE:
            link = change.new if change.op == Op.CREATE else change.old
            if isinstance(link, dict) and link.get("user_id"):
                found.add(link["user_id"])
    return found


# --- the email ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedNotice:
    """One queued summary as the sender reads it back."""

    seq: int
    at: str
    actor: str | None
    summary: dict[str, Any]


@dataclass(frozen=True)
class Mail:
    """Everything one notification email needs (ids and names resolved by the sender)."""

    to: str
    sender: str
    issue_id: str
    issue_key: str
    issue_title: str
    org_slug: str
    project_key: str
    link: str
    unsubscribe: str
    notices: Sequence[QueuedNotice]
    names: Mapping[str, str] = field(default_factory=dict)  # user id -> display name
    recipient_id: str = ""


def domain_of(address: str) -> str:
    """The domain of an address like `Rhythm <rhythm@example.com>` (for Message-IDs)."""
    bare = address.rsplit("<", 1)[-1].rstrip("> ").strip()
    domain = bare.rpartition("@")[2]
    return domain or "rhythm.invalid"


def thread_id(issue_id: str, domain: str) -> str:
    """The Message-ID every email about one issue replies to, so clients thread them."""
    return f"<issue.{issue_id}@{domain}>"


def message_id(mail: Mail, domain: str) -> str:
    """Stable for one window's email: a resend after a crash keeps it (clients dedupe)."""
    first = mail.notices[0].seq
    return f"<n{first}.{mail.issue_id}.{mail.recipient_id or 'x'}@{domain}>"


def compose(mail: Mail) -> EmailMessage:
    """Plain text plus a small HTML part, threaded per issue, with List-Unsubscribe."""
    domain = domain_of(mail.sender)
    lines = [line for notice in mail.notices for line in describe(notice, mail.names)]
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = mail.to
    message["Subject"] = f"[{mail.issue_key}] {_one_line(mail.issue_title)}"
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(mail, domain)
    message["In-Reply-To"] = thread_id(mail.issue_id, domain)
    message["References"] = thread_id(mail.issue_id, domain)
    message["List-Id"] = f"<{mail.project_key.lower()}.{mail.org_slug}.{domain}>"
    message["List-Unsubscribe"] = f"<{mail.unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Rhythm-Issue"] = mail.issue_key
    text = "\n".join(
        [f"{mail.issue_key}: {_one_line(mail.issue_title)}", "", *lines, "", f"Open: {mail.link}",
         "", "You get this because you watch this issue or were mentioned in it.",
         f"Stop all notification emails: {mail.unsubscribe} (POST), or "
         'PATCH /api/v1/users/me {"notifications": {"email": false}}.']
    )  # fmt: skip
    message.set_content(text)
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    message.add_alternative(
        f'<p><a href="{html.escape(mail.link)}">{html.escape(mail.issue_key)}</a> '
        f"{html.escape(_one_line(mail.issue_title))}</p><ul>{items}</ul>"
        f'<p style="color:#666;font-size:small">You watch this issue or were mentioned in it. '
        f'<a href="{html.escape(mail.unsubscribe)}">Unsubscribe</a></p>',
        subtype="html",
    )
    return message


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def describe(notice: QueuedNotice, names: Mapping[str, str]) -> list[str]:
    """Human lines for one queued summary, e.g. `Bob changed priority: normal → major`."""
    who = names.get(notice.actor or "", "") or ("Rhythm" if notice.actor is None else "Someone")
    event = notice.summary.get("event", "issue.updated")
    lines: list[str] = []
    if event == "issue.created":
        lines.append(f"{who} created the issue")
    elif event == "issue.deleted":
        return [f"{who} deleted the issue"]
    elif event == "issue.restored":
        return [f"{who} restored the issue"]
    for change in notice.summary.get("changes", []):
        line = _describe_change(who, change, names, created=event == "issue.created")
        if line:
            lines.append(line)
    return lines or [f"{who} changed the issue"]


def _describe_change(
    who: str, change: Mapping[str, Any], names: Mapping[str, str], *, created: bool
) -> str | None:
    name, old, new = change.get("field"), change.get("old"), change.get("new")
    if name == "comment":
        if old is None and isinstance(new, dict):
            return f"{who} commented: {_excerpt(new.get('body'))}"
        if new is None:
            return f"{who} deleted a comment"
        return f"{who} edited a comment"
    if name == "body":  # a comment's edit, logged field by field
        return f"{who} edited a comment: {_excerpt(new)}"
    if name == "assignees":
        if new is not None:
            return None if created else f"{who} assigned {_value(new, names)}"
        return f"{who} unassigned {_value(old, names)}"
    if name == "tags":
        return (
            None
            if created
            else (f"{who} added tag {new}" if new is not None else f"{who} removed tag {old}")
        )
    if name == "relation":
        return f"{who} {'added' if old is None else 'removed'} a relation"
    if name == "attachment":
        if isinstance(new, dict):
            return f"{who} attached {new.get('filename') or 'a file'}"
        return f"{who} removed an attachment"
    if name == "time_entry":
        return f"{who} logged time" if old is None else f"{who} removed logged time"
    if name == "description":
        return f"{who} edited the description"
    if name is None:
        return None
    return f"{who} changed {name}: {_value(old, names)} → {_value(new, names)}"


def _value(value: Any, names: Mapping[str, str]) -> str:
    if value is None or value == "" or value == []:
        return "(none)"
    if isinstance(value, str):
        return names.get(value, _one_line(value))
    if isinstance(value, list):
        return ", ".join(_value(v, names) for v in value)
    return str(value)


def _excerpt(text: Any, limit: int = 300) -> str:
    if not isinstance(text, str):
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
