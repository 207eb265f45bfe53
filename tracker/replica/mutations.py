"""Mutations: what the replica records for each offline command, and its local effect.

A mutation is an intent in the server's vocabulary (docs/sync.md, v1), naming
entities by UUID only. Locally it is turned into the change rows the server
would write for it, and those go through the one applier (tracker.replica.apply)
that also applies pulled changes; the server's verdict arrives with the next
pull and replaces the local guess (the view is rebuilt from base).

Provisional issue numbers: an issue created offline has no number yet; in the
view it gets one from a reserved range no server reaches (PROVISIONAL_BASE and
up), which the CLI shows as `WEB-~3fa9c` (the last five hex digits of its id).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from tracker.domain.ids import now_iso

#: Issue numbers at or above this are provisional (15 digits; real numbers never get here).
PROVISIONAL_BASE = 900_000_000_000_000
PROVISIONAL_KEY_RE = re.compile(r"^([A-Za-z][A-Za-z0-9]{1,9})-~([0-9a-f]{5})$", re.IGNORECASE)
#: Mutations the replica records (name -> version); anything else is online-only in v1.
VOCABULARY: Mapping[str, int] = {
    "issue.create": 1, "issue.update": 1, "issue.set_status": 1, "issue.set_description": 1,
    "issue.assignees": 1, "issue.tags": 1, "issue.delete": 1, "issue.restore": 1,
    "comment.create": 1, "comment.edit": 1, "comment.delete": 1, "time_entry.create": 1,
    "tag.create": 1,
}  # fmt: skip


def provisional_key(project_key: str, issue_id: str) -> str:
    return f"{project_key}-~{issue_id.replace('-', '')[-5:]}"


def is_provisional(number: int) -> bool:
    return number >= PROVISIONAL_BASE


def next_provisional(conn: sqlite3.Connection, project_id: str) -> int:
    top = conn.execute(
        "SELECT max(number) FROM issues WHERE project_id = ? AND number >= ?",
        (project_id, PROVISIONAL_BASE),
    ).fetchone()[0]
    return PROVISIONAL_BASE + 1 if top is None else int(top) + 1


def local_changes(
    conn: sqlite3.Connection, name: str, args: Mapping[str, Any], me: str, at: str | None = None
) -> list[dict[str, Any]]:
    """The change rows `name(args)` would write, as far as the replica can tell.

    Rules the server enforces (roles, transitions, merges) are not guessed here:
    the local effect is the person's intent; the server's answer replaces it."""
    at = at or now_iso()
    issue_id = str(args.get("issue_id") or args.get("id") or "")

    def change(entity: str, entity_id: str, op: str, **rest: Any) -> dict[str, Any]:
        return {"entity": entity, "entity_id": entity_id, "op": op, "at": at, **rest}

    if name == "issue.create":
        project_id = args["project_id"]
        image = {
            "id": args["id"], "number": next_provisional(conn, project_id),
            "title": args["title"], "description": args.get("description") or "",
            "type": args.get("type") or "task", "priority": args.get("priority") or "normal",
            "status": args.get("status"), "reporter": me,
            "assignees": list(args.get("assignees") or []), "tags": list(args.get("tags") or []),
            "sprint_id": args.get("sprint_id"), "parent_id": args.get("parent_id"),
            "due_date": args.get("due_date"), "estimate": args.get("estimate"),
            "custom_fields": args.get("custom_fields") or {}, "created_at": at,
            "updated_at": at, "version": 1,
        }  # fmt: skip
        return [change("issue", args["id"], "create", project=project_id, new=image)]
    if name == "issue.update":
        rows = []
        for field, value in args.get("set", {}).items():
            if field == "custom_fields" and isinstance(value, dict):
                rows += [change("issue", issue_id, "update", field=k, new=v)
                         for k, v in value.items()]  # fmt: skip
            else:
                rows.append(change("issue", issue_id, "update", field=field, new=value))
        return rows
    if name == "issue.set_status":
        return [change("issue", issue_id, "update", field="stage_id", new=args["to_stage"])]
    if name == "issue.set_description":
        return [change("issue", issue_id, "update", field="description", new=args["text"])]
    if name in ("issue.assignees", "issue.tags"):
        entity, column = (
            ("issue_assignee", "user_id") if name == "issue.assignees" else ("issue_tag", "tag_id")
        )
        rows = [change(entity, f"{issue_id}:{x}", "delete", old={"issue_id": issue_id, column: x})
                for x in args.get("remove", [])]  # fmt: skip
        rows += [change(entity, f"{issue_id}:{x}", "create", new={"issue_id": issue_id, column: x})
                 for x in args.get("add", [])]  # fmt: skip
        return rows
    if name == "issue.delete":
        return [change("issue", issue_id, "delete", new={"deleted_at": at})]
    if name == "issue.restore":
        return [change("issue", issue_id, "update", field="deleted_at", new=None)]
    if name == "comment.create":
        row = {"id": args["id"], "issue_id": args["issue_id"], "author": me, "body": args["body"],
               "created_at": at, "updated_at": at, "version": 1}  # fmt: skip
        return [change("comment", args["id"], "create", new=row)]
    if name == "comment.edit":
        return [change("comment", args["id"], "update", field="body", new=args["body"])]
    if name == "comment.delete":
        return [change("comment", args["id"], "delete")]
    if name == "time_entry.create":
        row = {"id": args["id"], "issue_id": args["issue_id"], "user_id": me,
               "seconds_spent": int(args["minutes"]) * 60, "description": args.get("note") or "",
               "logged_at": f"{args['spent_on']}T00:00:00Z", "created_at": at}  # fmt: skip
        project = _project_of(conn, args["issue_id"])
        return [change("time_entry", args["id"], "create", project=project, new=row)]
    if name == "tag.create":
        row = {"id": args["id"], "project_id": args["project_id"], "name": args["name"],
               "color": args.get("color"), "created_at": at}  # fmt: skip
        return [change("tag", args["id"], "create", project=args["project_id"], new=row)]
    return []


def _project_of(conn: sqlite3.Connection, issue_id: str) -> str | None:
    row = conn.execute("SELECT project_id FROM issues WHERE id = ?", (issue_id,)).fetchone()
    return None if row is None else str(row[0])


def issue_of(name: str, args: Mapping[str, Any]) -> str | None:
    """The issue a mutation is about (for dependency tracking and reports)."""
    if name.startswith("issue."):
        return str(args.get("id"))
    if name in ("comment.create", "time_entry.create"):
        return str(args.get("issue_id"))
    return None
