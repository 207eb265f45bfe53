"""Offline writes: `rhythm issue create|update|comment|comment-edit` on a replica become
mutations.

Input is validated with the API's own models (IssueCreate, IssuePatch,
CommentIn, CommentPatch), names are resolved to ids in the view (stages, tags, people,
issues), and each intent is journaled before its effect shows in the view
(tracker.replica.engine.Replica.record). Roles and workflow rules are the
server's to decide at push time; nothing here repeats them, but for the one rule the
view can be sure of: only a comment's author edits it (the server says so too).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from typing import Any

from pydantic import BaseModel, ValidationError

from tracker.domain.custom_fields import FieldDef, apply_values, by_name, from_text
from tracker.domain.ids import new_id
from tracker.domain.models.comments import CommentIn, CommentPatch
from tracker.domain.models.issues import IssueCreate, IssuePatch, parse_issue_ref
from tracker.errors import Forbidden, NotFound, ValidationFailed
from tracker.replica.engine import SYSTEM_DB, TENANT_DB, Replica, connect
from tracker.replica.mutations import PROVISIONAL_KEY_RE, is_provisional, provisional_key


def _validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None


class View:
    """Read-only look-ups in a replica's view (names -> ids)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.tenant = connect(replica.view / replica.org_id / TENANT_DB)
        self.system = connect(replica.view / SYSTEM_DB)

    def close(self) -> None:
        self.tenant.close()
        self.system.close()

    def project(self, key: str) -> sqlite3.Row:
        row = self.tenant.execute(
            "SELECT id, key FROM projects WHERE key = ? COLLATE NOCASE AND deleted_at IS NULL",
            (key,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no project {key.upper()} in this replica")
        return row

    def issue(self, key: str) -> sqlite3.Row:
        """By key (`WEB-42`), provisional key (`WEB-~3fa9c`) or an id."""
        issue_id = None
        if PROVISIONAL_KEY_RE.match(key.strip()) or "~" in key:
            issue_id = self.replica.journal.issue_for_key(key.strip())
            if issue_id is None:
                raise NotFound(f"no issue {key} in this replica")
        if issue_id is not None or len(key) == 36:
            row = self.tenant.execute(
                "SELECT i.*, p.key AS project_key, s.name AS status FROM issues i"
                " JOIN projects p ON p.id = i.project_id JOIN stages s ON s.id = i.stage_id"
                " WHERE i.id = ?", (issue_id or key,),
            ).fetchone()  # fmt: skip
        else:
            try:
                project_key, number = parse_issue_ref(key)
            except ValueError:
                raise ValidationFailed([("key", "expected an issue key such as WEB-42")]) from None
            row = self.tenant.execute(
                "SELECT i.*, p.key AS project_key, s.name AS status FROM issues i"
                " JOIN projects p ON p.id = i.project_id JOIN stages s ON s.id = i.stage_id"
                " WHERE p.key = ? COLLATE NOCASE AND i.number = ?", (project_key, number),
            ).fetchone()  # fmt: skip
        if row is None or row["deleted_at"] is not None:
            raise NotFound(f"no issue {key.upper()} in this replica")
        return row

    def stage(self, project_id: str, name: str) -> str:
        row = self.tenant.execute(
            "SELECT id FROM stages WHERE project_id = ? AND name = ? COLLATE NOCASE",
            (project_id, name),
        ).fetchone()
        if row is None:
            raise ValidationFailed([("status", f"no stage named '{name}' in this project")])
        return str(row[0])

    def people(self, emails: list[str]) -> list[str]:
        ids = []
        for email in emails:
            row = self.system.execute(
                "SELECT id FROM users WHERE email = ? COLLATE NOCASE OR id = ?", (email, email)
            ).fetchone()
            if row is None:
                raise NotFound(f"no user with the email {email} in this replica")
            ids.append(str(row[0]))
        return ids

    def sprint(self, project_id: str, ref: str | None) -> dict[str, Any]:
        if ref is None:
            return {}
        if ref.strip().lower() == "none":
            return {"sprint_id": None}
        row = self.tenant.execute(
            "SELECT id FROM sprints WHERE project_id = ? AND (id = ? OR name = ? COLLATE NOCASE)",
            (project_id, ref, ref),
        ).fetchone()
        if row is None:
            raise NotFound(f"no sprint {ref!r} in this replica")
        return {"sprint_id": str(row[0])}

    def field_defs(self, project_id: str) -> list[FieldDef]:
        rows = self.tenant.execute(
            "SELECT id, name, type, options, required FROM custom_fields WHERE project_id = ?"
            " ORDER BY position, name", (project_id,),
        ).fetchall()  # fmt: skip
        return [FieldDef(r["id"], r["name"], r["type"], tuple(json.loads(r["options"])),
                         bool(r["required"])) for r in rows]  # fmt: skip

    def custom_values(self, row: sqlite3.Row) -> dict[str, Any]:
        """The issue's custom field values by name (as the API shows them)."""
        defs = self.field_defs(row["project_id"])
        return by_name(defs, json.loads(row["custom_fields"] or "{}"))

    def tags(self, project_id: str) -> dict[str, str]:
        rows = self.tenant.execute("SELECT lower(name), id FROM tags WHERE project_id = ?",
                                   (project_id,))  # fmt: skip
        return {r[0]: r[1] for r in rows}

    def issue_tags(self, issue_id: str) -> set[str]:
        return {r[0] for r in self.tenant.execute(
            "SELECT tag_id FROM issue_tags WHERE issue_id = ?", (issue_id,))}  # fmt: skip

    def assignees(self, issue_id: str) -> set[str]:
        return {r[0] for r in self.tenant.execute(
            "SELECT user_id FROM issue_assignees WHERE issue_id = ?", (issue_id,))}  # fmt: skip


def _typed_fields(
    view: View, project_id: str, raw: Mapping[str, str], *, creating: bool
) -> dict[str, Any]:
    """`NAME=VALUE` text -> {field name as defined: JSON value}, checked against the
    project's definitions in the view with the server's own rules (an unknown field, a
    bad value for its type or an unset required field is refused here, in words)."""
    defs = view.field_defs(project_id)
    canonical = {d.name.lower(): d.name for d in defs}
    values = {canonical.get(k.lower(), k): v for k, v in from_text(defs, raw).items()}
    if values or creating:
        apply_values(defs, {}, values, creating=creating)
    return values


def create_issue(
    replica: Replica, project_key: str, data: dict[str, Any], fields: Mapping[str, str],
    assignees: list[str] | None, sprint: str | None,
) -> str:  # fmt: skip
    """Record `issue.create`; returns the provisional key (`WEB-~3fa9c`)."""
    view = View(replica)
    try:
        project = view.project(project_key)
        people = view.people(assignees or [])
        extra = view.sprint(project["id"], sprint)
        custom = _typed_fields(view, project["id"], fields, creating=True)
        data = _current_parent(view, data)
        body = _validated(IssueCreate, {**data, "assignees": people, **extra})
        parent_id = None
        if body.parent is not None:
            parent_id = str(view.issue(_key_in(project["key"], body.parent))["id"])
        if body.status is not None:
            view.stage(project["id"], body.status)  # a typo fails here, not at sync
    finally:
        view.close()
    issue_id = new_id()
    args: dict[str, Any] = {
        "id": issue_id, "project_id": project["id"], "title": body.title,
        "description": body.description, "type": body.type, "priority": body.priority,
        "assignees": body.assignees, "tags": body.tags,
    }  # fmt: skip
    if custom:
        args["custom_fields"] = custom
    for name, value in (("status", body.status), ("parent_id", parent_id),
                        ("sprint_id", body.sprint_id), ("due_date", body.due_date),
                        ("estimate", body.estimate)):  # fmt: skip
        if value is not None:
            args[name] = value
    key = provisional_key(project["key"], issue_id)
    replica.record("issue.create", args, f'{key} created "{body.title}"')
    return key


def _shown(replica: Replica, row: sqlite3.Row) -> str:
    """How a label names the issue: its key, or its provisional key (`WEB-~3fa9c`) while
    the view's number is a reserved one (the CLI passes that number for a `~` key)."""
    if is_provisional(row["number"]):
        known = replica.journal.provisional_keys().get(row["id"])
        return known or provisional_key(row["project_key"], row["id"])
    return f"{row['project_key']}-{row['number']}"


def _current_parent(view: View, data: dict[str, Any]) -> dict[str, Any]:
    """A provisional parent key (`WEB-~3fa9c`) -> the number the view knows it by, so
    the API's model validates it as any key."""
    parent = data.get("parent")
    if isinstance(parent, str) and "~" in parent:
        row = view.issue(parent)
        return {**data, "parent": f"{row['project_key']}-{row['number']}"}
    return data


def _key_in(project_key: str, ref: str | int) -> str:
    return f"{project_key}-{ref}" if isinstance(ref, int) or str(ref).isdigit() else str(ref)


def update_issue(
    replica: Replica, key: str, data: dict[str, Any], fields: Mapping[str, str],
    assignees: list[str] | None, sprint: str | None,
) -> list[str]:  # fmt: skip
    """Record one mutation per kind of change (fields, status, description, links);
    returns what was recorded, in words."""
    view = View(replica)
    recorded: list[tuple[str, dict[str, Any], str]] = []
    try:
        row = view.issue(key)
        shown = _shown(replica, row)
        issue_id, project_id = row["id"], row["project_id"]
        extra: dict[str, Any] = view.sprint(project_id, sprint)
        if assignees is not None:
            extra["assignees"] = view.people(assignees)
        patch = _validated(IssuePatch, {**_current_parent(view, data), **extra})
        named = patch.model_fields_set
        sets: dict[str, Any] = {}
        bases: dict[str, Any] = {}
        for name in ("title", "type", "priority", "due_date", "estimate", "sprint_id"):
            if name in named and getattr(patch, name) != row[name]:
                sets[name], bases[name] = getattr(patch, name), row[name]
        if "parent" in named:
            parent = None
            if patch.parent is not None:
                parent = str(view.issue(_key_in(row["project_key"], patch.parent))["id"])
            if parent != row["parent_id"]:
                sets["parent_id"], bases["parent_id"] = parent, row["parent_id"]
        if fields:
            now_custom = view.custom_values(row)
            custom = {k: v for k, v in _typed_fields(view, project_id, fields,
                                                     creating=False).items()
                      if now_custom.get(k) != v}  # fmt: skip
            if custom:  # a base per field: only a real overlap is a conflict at sync
                sets["custom_fields"] = custom
                bases["custom_fields"] = {k: now_custom.get(k) for k in custom}
        if sets:
            what = ", ".join(_said(k, v) for k, v in sets.items())
            recorded.append(("issue.update", {"id": issue_id, "set": sets, "base": bases},
                             f"{shown} {what}"))  # fmt: skip
        if "status" in named and patch.status.lower() != row["status"].lower():
            to_stage = view.stage(project_id, patch.status)
            recorded.append(("issue.set_status", {"id": issue_id, "from_stage": row["stage_id"],
                                                  "to_stage": to_stage},
                             f"{shown} status {row['status']} -> {patch.status}"))  # fmt: skip
        if "description" in named and patch.description != row["description"]:
            recorded.append(("issue.set_description", {"id": issue_id, "base": row["description"],
                                                       "text": patch.description},
                             f"{shown} description"))  # fmt: skip
        if "assignees" in named:
            now, wanted = view.assignees(issue_id), set(patch.assignees)
            if now != wanted:
                recorded.append(("issue.assignees", {"id": issue_id,
                                                     "add": sorted(wanted - now),
                                                     "remove": sorted(now - wanted)},
                                 f"{shown} assignees"))  # fmt: skip
        if "tags" in named:
            known = view.tags(project_id)
            wanted_ids = []
            for name in patch.tags:
                tag_id = known.get(name.lower())
                if tag_id is None:
                    tag_id = new_id()
                    recorded.append(("tag.create", {"id": tag_id, "project_id": project_id,
                                                    "name": name},
                                     f"tag {name} created in {row['project_key']}"))  # fmt: skip
                wanted_ids.append(tag_id)
            now_tags = view.issue_tags(issue_id)
            if now_tags != set(wanted_ids):
                recorded.append(("issue.tags", {"id": issue_id,
                                                "add": sorted(set(wanted_ids) - now_tags),
                                                "remove": sorted(now_tags - set(wanted_ids))},
                                 f"{shown} tags"))  # fmt: skip
    finally:
        view.close()
    for name, args, label in recorded:
        replica.record(name, args, label)
    return [label for _, _, label in recorded]


def _said(name: str, value: Any) -> str:
    if name == "custom_fields":
        return ", ".join(f"{k} {'(unset)' if v is None else v}" for k, v in value.items())
    if name == "sprint_id" and value is None:
        return "sprint none"
    return f"{name.removesuffix('_id')} {value}"


def comment(replica: Replica, key: str, body: str) -> str:
    """Record `comment.create`; returns the new comment's id."""
    text = _validated(CommentIn, {"body": body}).body
    view = View(replica)
    try:
        row = view.issue(key)
    finally:
        view.close()
    comment_id = new_id()
    shown = _shown(replica, row)
    replica.record("comment.create", {"id": comment_id, "issue_id": row["id"], "body": text},
                   f"{shown} comment")  # fmt: skip
    return comment_id


def edit_comment(replica: Replica, key: str, comment_id: str, body: str) -> str | None:
    """Record `comment.edit` with the text the view shows as its base (the server 3-way
    merges, an overlap comes back as a draft); returns its label, None when unchanged.
    Only the author edits (the REST rule): refused here when the view says it is not mine."""
    text = _validated(CommentPatch, {"body": body}).body
    view = View(replica)
    try:
        row = view.issue(key)
        found = view.tenant.execute(
            "SELECT author, body FROM comments WHERE id = ? AND issue_id = ?",
            (comment_id.strip(), row["id"]),
        ).fetchone()
    finally:
        view.close()
    shown = _shown(replica, row)
    if found is None:
        raise NotFound(f"no comment {comment_id} on {shown} in this replica")
    if found["author"] != replica.user_id:
        raise Forbidden("only the author can edit a comment")
    if found["body"] == text:
        return None
    label = f"{shown} comment {comment_id.strip()} edit"
    replica.record("comment.edit", {"id": comment_id.strip(), "base": found["body"],
                                    "body": text}, label)  # fmt: skip
    return label


def issue_number(replica: Replica, key: str) -> str:
    """The key the view knows an issue by now (a provisional key -> its current number)."""
    view = View(replica)
    try:
        row = view.issue(key)
        return f"{row['project_key']}-{row['number']}"
    finally:
        view.close()


def provisional_numbers(replica: Replica) -> dict[str, str]:
    """`WEB-900000000000001` -> `WEB-~3fa9c` for every issue shown under a provisional key."""
    keys = replica.journal.provisional_keys()
    if not keys:
        return {}
    with closing(connect(replica.view / replica.org_id / TENANT_DB)) as conn:
        rows = conn.execute(
            "SELECT i.id, i.number, p.key FROM issues i JOIN projects p ON p.id = i.project_id"
            " WHERE i.number >= 900000000000000"
        ).fetchall()
    return {f"{r['key']}-{r['number']}": keys.get(r["id"], provisional_key(r["key"], r["id"]))
            for r in rows}  # fmt: skip
