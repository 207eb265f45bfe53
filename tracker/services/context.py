"""Context dossiers for LLM agents: one issue, or one project, as compact Markdown (SPEC §14).

The one place that builds them: the HTTP routes, the MCP server's `get_issue` and
later scripts call these two functions. Each reads its tenant in one unit (a
consistent snapshot), then the people's names from the system database, then
renders with `tracker.domain.dossier` (pure, deterministic, within `max_chars`).

Visibility is the reader's, as in every read: the caller already holds a
`ProjectAccess` for the issue's project; a related issue in a project the reader
cannot see is listed as "a hidden issue" with its relation type only.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from tracker.domain.dossier import (
    CommentText,
    HistorySummary,
    IssueFacts,
    Link,
    ProjectFacts,
    Related,
    SprintFacts,
    StageCount,
    StatusStep,
    issue_dossier,
    project_dossier,
)
from tracker.domain.markdown import inline
from tracker.domain.models.context import DEFAULT_MAX_CHARS
from tracker.domain.models.issues import Issue
from tracker.domain.permissions import ProjectRole, effective_project_role
from tracker.errors import NotFound
from tracker.services.access import ProjectAccess, read
from tracker.services.custom_fields import field_defs
from tracker.services.issues import to_issue
from tracker.services.runtime import Core
from tracker.storage import boards as board_sql
from tracker.storage import context as context_sql
from tracker.storage import issues as issue_sql
from tracker.storage import sprints as sprint_sql
from tracker.storage import stages as stage_sql
from tracker.storage import users as user_sql

#: Status changes listed in an issue's history summary.
STATUS_STEPS = 5
#: Change rows read for a project's recent activity.
ACTIVITY_ROWS = 200


@dataclass
class _IssueRead:
    """What one tenant read gathered for an issue dossier (names still to resolve)."""

    issue: Issue
    parent: Link | None
    children: list[Link]
    relations: list[Related]
    comments: list[tuple[str, str, str]]  # (author id, at, body), newest first
    history: tuple[int, int, Any, Any]
    kinds: list[tuple[str, str, int]]
    steps: list[sqlite3.Row]
    sprint: str | None
    people: set[str] = field(default_factory=set)


async def issue_context(
    core: Core, access: ProjectAccess, number: int, max_chars: int = DEFAULT_MAX_CHARS
) -> str:
    """The dossier of issue `number` as the reader in `access` may see it."""
    got = await read(core, access, lambda conn: _read_issue(conn, access, number, max_chars))
    names = await _names(core, got.people)
    return issue_dossier(_issue_facts(access, got, names), max_chars)


def _read_issue(
    conn: sqlite3.Connection, access: ProjectAccess, number: int, max_chars: int
) -> _IssueRead:
    project = access.project
    row = issue_sql.issue_view(conn, project.id, number)
    if row is None:
        raise NotFound("issue not found")
    issue = to_issue(row, project.key, field_defs(conn, project.id))
    parent = context_sql.issue_link(conn, row["parent_id"]) if row["parent_id"] else None
    got = _IssueRead(
        issue=issue,
        parent=None if parent is None else _link(project.key, parent),
        children=[_link(project.key, child) for child in context_sql.children(conn, issue.id)],
        relations=[
            _related(access, r) for r in context_sql.relations(conn, issue.id, access.user_id)
        ],
        comments=_comments(conn, issue.id, max_chars),
        history=context_sql.history_totals(conn, issue.id),
        kinds=context_sql.history_kinds(conn, issue.id),
        steps=context_sql.status_steps(conn, issue.id, STATUS_STEPS),
        sprint=context_sql.sprint_name(conn, issue.sprint_id) if issue.sprint_id else None,
    )
    got.people = {issue.reporter, *issue.assignees, *(c[0] for c in got.comments)}
    got.people |= {step["actor"] for step in got.steps if step["actor"]}
    return got


def _comments(
    conn: sqlite3.Connection, issue_id: str, max_chars: int
) -> list[tuple[str, str, str]]:
    """Newest first, only as many as could fit: their text alone passes the budget after."""
    taken: list[tuple[str, str, str]] = []
    total = 0
    for author, at, body in context_sql.newest_comments(conn, issue_id):
        taken.append((author, at, body))
        total += len(body)
        if total > max_chars:
            break
    return taken


def _link(project_key: str, row: sqlite3.Row) -> Link:
    return Link(f"{project_key}-{row['number']}", row["title"], row["status"])


def _related(access: ProjectAccess, row: sqlite3.Row) -> Related:
    """A relation as the reader may see it: the other issue, or hidden."""
    if row["project_id"] != access.project.id:
        member = ProjectRole(row["member_role"]) if row["member_role"] else None
        if effective_project_role(access.org.role, member, row["visibility"]) is None:
            return Related(row["type"], None)
    return Related(row["type"], _link(row["project_key"], row))


async def _names(core: Core, user_ids: set[str]) -> dict[str, str]:
    """Display names (the email when a person has none), as events show people."""
    ids = sorted(user_id for user_id in user_ids if user_id)
    if not ids:
        return {}
    rows = await core.system.read(lambda conn: user_sql.users_by_ids(conn, ids))
    return {row["id"]: row["display_name"] or row["email"] for row in rows}


def _issue_facts(access: ProjectAccess, got: _IssueRead, names: dict[str, str]) -> IssueFacts:
    issue = got.issue
    changes, people, first_at, last_at = got.history
    return IssueFacts(
        key=issue.key,
        title=issue.title,
        project=f"{access.project.name} ({access.project.key})",
        fields=_fields(issue, got.sprint, names),
        description=issue.description,
        parent=got.parent,
        children=got.children,
        relations=got.relations,
        history=HistorySummary(
            changes=changes,
            people=people,
            first_at=first_at,
            last_at=last_at,
            kinds=[(f"{entity} {op}", n) for entity, op, n in got.kinds],
            steps=[_step(row, names) for row in reversed(got.steps)],
        ),
        comments_total=issue.comment_count,
        comments=[CommentText(names.get(a, a or "system"), at, b) for a, at, b in got.comments],
    )


def _fields(issue: Issue, sprint: str | None, names: dict[str, str]) -> list[tuple[str, str]]:
    fields = [
        ("Status", issue.status),
        ("Type", issue.type),
        ("Priority", issue.priority),
        ("Reporter", names.get(issue.reporter, issue.reporter)),
        ("Assignees", ", ".join(names.get(a, a) for a in issue.assignees)),
        ("Tags", ", ".join(issue.tags)),
        ("Sprint", sprint or ""),
        ("Due date", issue.due_date or ""),
        ("Estimate", "" if issue.estimate is None else f"{issue.estimate} min"),
        ("Time spent", f"{issue.time_spent // 60} min" if issue.time_spent else ""),
        ("Comments", str(issue.comment_count)),
    ]
    for name in sorted(issue.custom_fields, key=str.lower):
        value = issue.custom_fields[name]
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        fields.append((f"Field {name}", "" if value is None else shown))
    fields += [
        ("Created", issue.created_at),
        ("Updated", issue.updated_at),
        ("Resolved", issue.resolved_at or ""),
        ("Version", str(issue.version)),
    ]
    return fields


def _step(row: sqlite3.Row, names: dict[str, str]) -> StatusStep:
    actor = names.get(row["actor"], "system") if row["actor"] else "system"
    return StatusStep(row["at"], actor, _plain(row["old"]), _plain(row["new"]))


def _plain(stored: str | None) -> str:
    value = None if stored is None else json.loads(stored)
    return "" if value is None else str(value)


# --- project ----------------------------------------------------------------------------------


async def project_context(
    core: Core, access: ProjectAccess, max_chars: int = DEFAULT_MAX_CHARS
) -> str:
    """The dossier of the access's project: stages with the board's counts, open work,
    the active sprint and recent activity."""
    stages, sprint, changes = await read(core, access, lambda conn: _read_project(conn, access))
    names = await _names(core, {row["actor"] for row in changes if row["actor"]})
    project = access.project
    activity = _activity(project.key, changes, names)
    facts = ProjectFacts(
        key=project.key,
        name=project.name,
        description=project.row.get("description") or "",
        visibility=project.visibility,
        stages=stages,
        sprint=sprint,
        activity=activity,
        activity_total=len(activity),
    )
    return project_dossier(facts, max_chars)


def _read_project(
    conn: sqlite3.Connection, access: ProjectAccess
) -> tuple[list[StageCount], SprintFacts | None, list[sqlite3.Row]]:
    project_id = access.project.id
    counts = board_sql.column_counts(conn, project_id, None)  # the board's own counts
    stages = [
        StageCount(stage["name"], stage["category"], counts.get(stage["id"], 0))
        for stage in stage_sql.list_stages(conn, project_id)
    ]
    active = sprint_sql.active_sprint(conn, project_id)
    sprint = None
    if active is not None:
        sprint = SprintFacts(
            active["name"],
            active["goal"],
            active["starts_at"],
            active["ends_at"],
            context_sql.sprint_by_category(conn, active["id"]),
        )
    return stages, sprint, context_sql.recent_changes(conn, project_id, ACTIVITY_ROWS)


def _activity(key: str, rows: list[sqlite3.Row], names: dict[str, str]) -> list[str]:
    """One line per batch and thing changed, newest first: when, who, what, which issue
    (a card move's `status` and `rank` rows read as one `update issue status, rank`)."""
    groups: dict[tuple[str, str, str, int | None], list[sqlite3.Row]] = {}
    for row in rows:
        groups.setdefault((row["batch"], row["entity"], row["op"], row["number"]), []).append(row)
    lines = []
    for (_, entity, op, number), group in groups.items():
        first = group[0]
        who = names.get(first["actor"], "someone") if first["actor"] else "system"
        fields = ", ".join(dict.fromkeys(row["field"] for row in reversed(group) if row["field"]))
        what = f"{op} {entity}" + (f" {fields}" if fields else "")
        target = f" on {key}-{number}" if number is not None else ""
        lines.append(f"- {first['at']} {inline(who)}: {what}{target}")
    return lines
