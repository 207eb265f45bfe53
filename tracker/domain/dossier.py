"""Context dossiers: an issue or a project as compact Markdown for an LLM, within a budget.

Pure rendering from plain facts the service has read. The output is
deterministic (no clock, stable order), never longer than `max_chars`, and
says what it left out: an issue's oldest comments go first, then the tail of
its description, then (only when lists alone overflow) whole lines of the list
sections. User text is fenced (descriptions, comments) or escaped (titles,
names, values) by `domain.markdown`, so it cannot change the document's shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tracker.domain.markdown import fence, inline

#: Lists longer than this are shortened to their first entries plus "and N more".
LIST_CAP = 50
#: Room kept for the comments heading, whose counts are only known at the end.
_COMMENTS_HEAD_ROOM = 160
#: Room kept for the shortest description block (heading, empty fence, cut note).
_SLACK = 200
_CUT_NOTE = "\n_(list sections cut to fit max_chars)_\n"


@dataclass(frozen=True)
class Link:
    """Another issue named in a dossier (title as stored; escaped when rendered)."""

    key: str
    title: str
    status: str


@dataclass(frozen=True)
class Related:
    """One relation of the issue; `issue` is None when the reader cannot see it."""

    type: str
    issue: Link | None


@dataclass(frozen=True)
class CommentText:
    author: str
    at: str
    body: str


@dataclass(frozen=True)
class StatusStep:
    at: str
    actor: str
    old: str
    new: str


@dataclass(frozen=True)
class HistorySummary:
    changes: int = 0
    people: int = 0
    first_at: str | None = None
    last_at: str | None = None
    kinds: Sequence[tuple[str, int]] = ()  # ("comment create", 5), most frequent first
    steps: Sequence[StatusStep] = ()  # latest status changes, oldest first


@dataclass(frozen=True)
class IssueFacts:
    key: str
    title: str
    project: str
    fields: Sequence[tuple[str, str]]  # (label, plain value), escaped when rendered
    description: str
    parent: Link | None = None
    children: Sequence[Link] = ()
    relations: Sequence[Related] = ()
    history: HistorySummary = field(default_factory=HistorySummary)
    comments_total: int = 0
    comments: Sequence[CommentText] = ()  # newest first; may be fewer than the total


@dataclass(frozen=True)
class StageCount:
    name: str
    category: str
    count: int


@dataclass(frozen=True)
class SprintFacts:
    name: str
    goal: str
    starts_at: str | None
    ends_at: str | None
    by_category: Sequence[tuple[str, int]]


@dataclass(frozen=True)
class ProjectFacts:
    key: str
    name: str
    description: str
    visibility: str
    stages: Sequence[StageCount]
    sprint: SprintFacts | None
    activity: Sequence[str] = ()  # plain lines, newest first (already escaped)
    activity_total: int = 0


# --- issue ------------------------------------------------------------------------------------


def issue_dossier(facts: IssueFacts, max_chars: int) -> str:
    """The issue dossier, at most `max_chars` long."""
    top = _issue_top(facts)
    middle = _hierarchy(facts) + _relations(facts) + _history(facts.history)
    top, middle = _fit_lists(top, middle, max_chars - _COMMENTS_HEAD_ROOM - _SLACK)
    room = max_chars - len(top) - len(middle) - _COMMENTS_HEAD_ROOM
    description = _description(facts.description, room)
    room -= len(description)
    shown: list[str] = []
    for comment in facts.comments:  # newest first: the oldest are the ones left out
        block = _comment(comment)
        if len(block) > room:
            break
        shown.append(block)
        room -= len(block)
    comments = _comments_head(facts.comments_total, len(shown), max_chars) + "".join(
        reversed(shown)
    )
    return top + description + middle + comments


def _issue_top(facts: IssueFacts) -> str:
    lines = [f"# {facts.key}: {inline(facts.title)}", "", f"Project: {inline(facts.project)}", ""]
    lines.append("## Fields")
    lines += [f"- **{label}:** {inline(value) or '—'}" for label, value in facts.fields]
    return "\n".join(lines) + "\n\n"


def _description(text: str, room: int) -> str:
    head = "## Description\n"
    if not text.strip():
        return head + "(none)\n\n"
    block = fence(text, "text")
    if len(head) + len(block) + 2 <= room:
        return head + block + "\n\n"
    note = f"\n_(description cut: the first {{n}} of {len(text)} characters are shown)_\n\n"
    keep = max(0, room - len(head) - len(note) - 16 - _fence_extra(text))
    kept = text[:keep]
    return head + fence(kept, "text") + note.format(n=len(kept))


def _fence_extra(text: str) -> int:
    """Fence characters beyond the text itself (a cut text never needs longer fences)."""
    return len(fence(text, "text")) - len(text)


def _link(link: Link) -> str:
    return f"{link.key} {inline(link.title)} ({inline(link.status)})"


def _capped(lines: list[str], total: int) -> list[str]:
    if total > LIST_CAP:
        return [*lines[:LIST_CAP], f"- … and {total - LIST_CAP} more"]
    return lines


def _hierarchy(facts: IssueFacts) -> str:
    lines = ["## Parent and sub-issues"]
    lines.append(f"- Parent: {_link(facts.parent)}" if facts.parent else "- Parent: none")
    lines.append(f"- Sub-issues: {len(facts.children)}")
    children = [f"  - {_link(child)}" for child in facts.children]
    lines += _capped(children, len(children))
    return "\n".join(lines) + "\n\n"


def _relations(facts: IssueFacts) -> str:
    lines = [f"## Relations ({len(facts.relations)})"]
    entries = [
        f"- {relation.type} {_link(relation.issue)}"
        if relation.issue
        else f"- {relation.type} a hidden issue (in a project you cannot see)"
        for relation in facts.relations
    ]
    lines += _capped(entries, len(entries)) or ["(none)"]
    return "\n".join(lines) + "\n\n"


def _history(history: HistorySummary) -> str:
    lines = ["## History"]
    if not history.changes:
        return "## History\n(no changes recorded)\n\n"
    lines.append(
        f"{_count(history.changes, 'change')} by {_count(history.people, 'person', 'people')}, "
        f"from {history.first_at} to {history.last_at}."
    )
    if history.kinds:
        lines.append("By kind: " + ", ".join(f"{kind} x{n}" for kind, n in history.kinds) + ".")
    for step in history.steps:
        lines.append(
            f"- {step.at} {inline(step.actor)}: status {inline(step.old)} → {inline(step.new)}"
        )
    return "\n".join(lines) + "\n\n"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _comment(comment: CommentText) -> str:
    return f"### {inline(comment.author)}, {comment.at}\n{fence(comment.body, 'text')}\n\n"


def _comments_head(total: int, shown: int, max_chars: int) -> str:
    if total == 0:
        return "## Comments\n(none)\n"
    if shown == total:
        return f"## Comments ({total}, oldest first)\n"
    return (
        f"## Comments (the latest {shown} of {total}, oldest first)\n"
        f"_({total - shown} older comments cut to fit {max_chars} characters)_\n\n"
    )


def _fit_lists(top: str, middle: str, budget: int) -> tuple[str, str]:
    """Drop whole lines from the end of the list sections (then of the top) until they fit;
    these sections hold no fences, so a line cut cannot leave one open."""
    if len(top) + len(middle) <= budget:
        return top, middle
    budget -= len(_CUT_NOTE)
    lines = middle.splitlines(keepends=True)
    while lines and len(top) + sum(map(len, lines)) > budget:
        lines.pop()
    if not lines:
        top_lines = top.splitlines(keepends=True)
        while top_lines and sum(map(len, top_lines)) > budget:
            top_lines.pop()
        top = "".join(top_lines)
    return top, "".join(lines) + _CUT_NOTE


# --- project ----------------------------------------------------------------------------------


def project_dossier(facts: ProjectFacts, max_chars: int) -> str:
    """The project dossier: stages with board counts, open work, active sprint, activity."""
    top = f"# Project {facts.key}: {inline(facts.name)}\n\nVisibility: {facts.visibility}\n\n"
    top, body = _fit_lists(top, _project_body(facts), max_chars - _COMMENTS_HEAD_ROOM - _SLACK)
    room = max_chars - len(top) - len(body) - _COMMENTS_HEAD_ROOM
    description = _description(facts.description, room)
    room -= len(description)
    shown: list[str] = []
    for line in facts.activity:  # newest first
        if len(line) + 1 > room:
            break
        shown.append(line + "\n")
        room -= len(line) + 1
    activity = _activity_head(facts.activity_total, len(shown), max_chars) + "".join(shown)
    return top + description + body + activity


def _project_body(facts: ProjectFacts) -> str:
    open_count = sum(s.count for s in facts.stages if s.category != "done")
    done_count = sum(s.count for s in facts.stages if s.category == "done")
    lines = ["## Stages (board order)", "| Stage | Category | Issues |", "|---|---|---|"]
    lines += [f"| {inline(s.name)} | {s.category} | {s.count} |" for s in facts.stages]
    total = open_count + done_count
    lines += ["", f"Open issues: {open_count}. Done: {done_count}. Total: {total}."]
    lines += ["", "## Active sprint"]
    sprint = facts.sprint
    if sprint is None:
        lines.append("(none)")
    else:
        lines.append(f"- **Name:** {inline(sprint.name)}")
        lines.append(f"- **Goal:** {inline(sprint.goal) or '—'}")
        lines.append(f"- **Dates:** {sprint.starts_at or '?'} to {sprint.ends_at or '?'}")
        counts = ", ".join(f"{category} {n}" for category, n in sprint.by_category)
        lines.append(f"- **Issues by category:** {counts or 'none'}")
    return "\n".join(lines) + "\n\n"


def _activity_head(total: int, shown: int, max_chars: int) -> str:
    if total == 0:
        return "## Recent activity\n(none)\n"
    if shown == total:
        return f"## Recent activity (the latest {total}, newest first)\n"
    return (
        f"## Recent activity (the latest {shown} of {total} entries, newest first)\n"
        f"_({total - shown} older entries cut to fit {max_chars} characters)_\n"
    )
