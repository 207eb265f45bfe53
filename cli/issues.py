"""`rhythm issue ...`: issue work on a data directory, no server needed.

Operator rights, or `--as EMAIL` (or `rhythm use --as`) with that person's roles
(see cli/orgs.py), who is the reporter/author recorded in the change log
(required to create or comment). Issues are named by key: `rhythm issue show
WEB-42`; people by email or `me`; sprints by name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cli import complete, issue_args, offline
from cli.context import (
    DataDirOption,
    JsonOption,
    QuietOption,
    fail,
    print_ids,
    print_json,
    print_table,
    run_with_core,
)
from cli.people import named
from cli.shell import lazy_group
from cli.target import AsOption, OrgOption, ProjectOption, Target

if TYPE_CHECKING:
    from tracker.domain.models.comments import Comment
    from tracker.domain.models.imports import ImportReport
    from tracker.domain.models.issues import Issue

#: Commands kept in their own modules, imported only when used (start-up time).
ELSEWHERE = {
    "search": "cli.search:search",
    "edit": "cli.edit:edit",
    "attach": "cli.attachments:attach",
    "attachments": "cli.attachments:list_attachments",
    "resolve": "cli.resolve:resolve",
    "comment-edit": "cli.comment_edit:comment_edit",
}
app = typer.Typer(
    cls=lazy_group(ELSEWHERE),
    help="Create, list, show, update, link and comment on issues.",
    no_args_is_help=True,
)

FieldOption = typer.Option(
    None, "--field", "-f", help="Custom field NAME=VALUE (repeatable; empty VALUE unsets)."
)
KeyArgument = typer.Argument(
    ..., help="Issue key, e.g. WEB-42.", autocompletion=complete.issue_keys
)
COLUMNS = ["key", "status", "priority", "type", "title", "assignees", "updated_at"]


def _fields(pairs: list[str] | None) -> dict[str, str]:
    """`["Severity=high", "Ship date="]` -> {"Severity": "high", "Ship date": ""}."""
    fields: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            fail(f"--field expects NAME=VALUE, got {pair!r}")
        fields[name.strip()] = value
    return fields


def _given(**values: Any) -> dict[str, Any]:
    """Only the options the user gave (None and empty lists mean 'not given')."""
    return {k: v for k, v in values.items() if v is not None and v != []}


def _people(target: Target, names: list[str] | None) -> list[str] | None:
    """`--assignee` values: emails or `me`; `none` alone clears."""
    if not names:
        return None
    if [n.lower() for n in names] == ["none"]:
        return []
    return [target.person(n) for n in names]


def _show(
    issue: Issue, as_json: bool, names: dict[str, str] | None = None,
    found: list[Comment] | None = None,
) -> None:  # fmt: skip
    if as_json:
        print_json(issue)
        return
    names = names or {}
    typer.echo(f"{issue.key}  {issue.title}")
    typer.echo(f"  status {issue.status} · {issue.priority} · {issue.type} · v{issue.version}")
    for label, value in (
        ("reporter", named(names, issue.reporter) if names else ""),
        ("assignees", ", ".join(named(names, a) for a in issue.assignees)),
        ("tags", ", ".join(issue.tags)), ("parent", issue.parent), ("sprint", issue.sprint_id),
        ("due", issue.due_date), ("estimate", issue.estimate),
        ("custom", ", ".join(f"{k}={v}" for k, v in issue.custom_fields.items())),
    ):  # fmt: skip
        if value:
            typer.echo(f"  {label}: {value}")
    if issue.description:
        typer.echo("\n" + issue.description)
    for item in found or []:
        typer.echo(f"\n— {named(names, item.author)}, {item.created_at}\n{item.body}")


@app.command("create")
def create(
    title: str = typer.Argument(..., help="Title (1-500 characters)."),
    description: str | None = typer.Option(None, "--description", "-m", help="Markdown body."),
    type_: str | None = typer.Option(None, "--type", help="bug|feature|task|improvement|..."),
    priority: str | None = typer.Option(None, help="critical|major|normal|minor"),
    status: str | None = typer.Option(None, help="Stage name (default: the first todo stage)."),
    assignee: list[str] | None = typer.Option(
        None, "--assignee", help="Email or `me` (repeatable)."
    ),
    tag: list[str] | None = typer.Option(None, "--tag", help="Tag name (repeatable)."),
    parent: str | None = typer.Option(None, help="Parent issue key, e.g. WEB-7."),
    sprint: str | None = typer.Option(None, "--sprint", "-s", help="Sprint name or id."),
    due: str | None = typer.Option(None, help="Due date, YYYY-MM-DD."),
    estimate: int | None = typer.Option(None, help="Estimate in minutes."),
    field: list[str] | None = FieldOption,
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = typer.Option(
        None, "--as", help="Reporter's email (required: here, `rhythm use --as` or $RHYTHM_AS)."
    ),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Create an issue; the person acting (`--as`) is its reporter."""
    target = Target(data_dir, org, project, user)
    people = _people(target, assignee)
    data = _given(
        title=title, description=description, type=type_, priority=priority, status=status,
        tags=tag, parent=parent, due_date=due, estimate=estimate,
    )  # fmt: skip
    if (replica := offline.replica_path(data_dir)) is not None:
        offline.create_issue(replica, project, data, _fields(field), people, sprint, quiet)
        return
    who, org_slug, key = target.someone("reports the issue"), target.org, target.project
    issue = run_with_core(
        data_dir,
        lambda core: issue_args.create_issue(
            core, org_slug, key, data, _fields(field), who, assignees=people, sprint=sprint
        ),
    )
    if as_json:
        print_json(issue)
    elif quiet:
        print_ids([issue.key])
    else:
        typer.echo(f"created {issue.key}: {issue.title}")


@app.command("list")
def list_issues(
    status: str | None = typer.Option(None, help="Stage names, comma-separated."),
    assignee: str | None = typer.Option(None, help="Emails, `me` or `none`, comma-separated."),
    tag: str | None = typer.Option(None, help="Tag names, comma-separated."),
    priority: str | None = typer.Option(None, help="Priorities, comma-separated."),
    type_: str | None = typer.Option(None, "--type", help="Types, comma-separated."),
    sprint: str | None = typer.Option(None, help="Sprint names or ids, or `none`."),
    sort: str | None = typer.Option(None, help="number|created|updated|priority + -asc/-desc."),
    limit: int = typer.Option(50, min=1, max=200, help="How many issues."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """List a project's issues (newest first by default)."""
    target = Target(data_dir, org, project, user)
    org_slug, key, who = target.org, target.project, target.who
    if assignee is not None:
        assignee = ",".join(target.person(n) for n in assignee.split(",") if n.strip())
    filters = _given(status=status, assignee=assignee, tag=tag, priority=priority,
                     type=type_, sprint=sprint, sort=sort, limit=limit)  # fmt: skip
    page, names = run_with_core(
        data_dir, lambda core: issue_args.list_issues(core, org_slug, key, filters, who)
    )
    if as_json:
        print_json(page)
        return
    if quiet:
        print_ids([i.key for i in page.items])
        return
    rows = [
        {**i.model_dump(), "assignees": ", ".join(named(names, a) for a in i.assignees)}
        for i in page.items
    ]
    print_table(rows, COLUMNS)
    if page.next_cursor:
        typer.echo(f"(more than {limit}; raise --limit or filter)")


@app.command("show")
def show(
    key: str = KeyArgument,
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one issue with its comments."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    issue, found, names = run_with_core(
        data_dir, lambda core: issue_args.show_issue(core, org_slug, key, who)
    )
    _show(issue, as_json, names, found)


@app.command("update")
def update(
    key: str = KeyArgument,
    title: str | None = typer.Option(None, help="New title."),
    description: str | None = typer.Option(None, "--description", "-m", help="New body."),
    type_: str | None = typer.Option(None, "--type", help="New type."),
    priority: str | None = typer.Option(None, help="New priority."),
    status: str | None = typer.Option(None, help="Move to this stage."),
    assignee: list[str] | None = typer.Option(
        None, "--assignee", help="Replace assignees: emails or `me` (repeatable; `none` clears)."
    ),
    tag: list[str] | None = typer.Option(None, "--tag", help="Replace tags."),
    parent: str | None = typer.Option(None, help="New parent key (`none` to detach)."),
    sprint: str | None = typer.Option(
        None, "--sprint", "-s", help="Put into this sprint (name or id; `none`: backlog)."
    ),
    due: str | None = typer.Option(None, help="Due date YYYY-MM-DD (`none` to clear)."),
    estimate: int | None = typer.Option(None, help="Estimate in minutes."),
    field: list[str] | None = FieldOption,
    if_version: int | None = typer.Option(None, help="Refuse if the issue is past this version."),
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Change the fields given; the others stay as they are."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    people = _people(target, assignee)
    data = _given(
        title=title, description=description, type=type_, priority=priority, status=status,
        tags=tag, estimate=estimate,
    )  # fmt: skip
    for name, value in (("parent", parent), ("due_date", due)):
        if value is not None:
            data[name] = None if value.lower() == "none" else value
    if (replica := offline.replica_path(data_dir)) is not None:
        offline.update_issue(replica, key, data, _fields(field), people, sprint)
        return
    issue = run_with_core(
        data_dir,
        lambda core: issue_args.update_issue(
            core,
            org_slug,
            key,
            data,
            _fields(field),
            who,
            if_version,
            assignees=people,
            sprint=sprint,
        ),
    )
    _show(issue, as_json)


@app.command("delete")
def delete(
    key: str = KeyArgument,
    if_version: int | None = typer.Option(None, help="Refuse if the issue is past this version."),
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Delete an issue (soft: `issue restore` brings it back under the same key)."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    run_with_core(
        data_dir, lambda core: issue_args.delete_issue(core, org_slug, key, who, if_version)
    )
    typer.echo(f"deleted {key.upper()}")


@app.command("restore")
def restore(
    key: str = KeyArgument,
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Bring a deleted issue back."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    issue = run_with_core(data_dir, lambda core: issue_args.restore_issue(core, org_slug, key, who))
    if as_json:
        print_json(issue)
    else:
        typer.echo(f"restored {issue.key}: {issue.title}")


@app.command("comment")
def comment(
    key: str = KeyArgument,
    body: str = typer.Argument(..., help="Comment text (markdown)."),
    org: str | None = OrgOption,
    user: str | None = typer.Option(
        None, "--as", help="Author's email (required: here, `rhythm use --as` or $RHYTHM_AS)."
    ),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Comment on an issue; the person acting (`--as`) is the author."""
    if (replica := offline.replica_path(data_dir)) is not None:
        offline.comment(replica, key, body)
        return
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.someone("writes the comment")
    made = run_with_core(data_dir, lambda core: issue_args.comment(core, org_slug, key, body, who))
    if as_json:
        print_json(made)
    else:
        typer.echo(f"commented on {key.upper()} ({made.id})")


@app.command("comments")
def list_comments(
    key: str = KeyArgument,
    limit: int = typer.Option(50, min=1, max=200, help="How many comments."),
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List an issue's comments, oldest first."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    page, names = run_with_core(
        data_dir, lambda core: issue_args.list_comments(core, org_slug, key, who, limit)
    )
    if as_json:
        print_json(page)
        return
    rows = [{**c.model_dump(), "author": named(names, c.author)} for c in page.items]
    print_table(rows, ["created_at", "author", "body", "id"])


@app.command("history")
def history(
    key: str = KeyArgument,
    limit: int = typer.Option(50, min=1, max=200, help="How many changes."),
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """An issue's change history, newest first."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    page, names = run_with_core(
        data_dir, lambda core: issue_args.issue_history(core, org_slug, key, who, limit)
    )
    if as_json:
        print_json(page)
        return
    rows = [
        {**h.model_dump(), "actor": named(names, h.actor) if h.actor else h.origin,
         "what": f"{h.entity} {h.op}" + (f" {h.field}" if h.field else ""),
         "old": _brief(h.old), "new": _brief(h.new)}
        for h in page.items
    ]  # fmt: skip
    print_table(rows, ["seq", "at", "actor", "what", "old", "new"])


def _brief(value: Any) -> str:
    """A history value for a table cell: whole images are summarised, long text cut."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("title") or value.get("name") or value.get("body") or "…")[:40]
    return str(value)[:40]


@app.command("link")
def link(
    key: str = KeyArgument,
    kind: str = typer.Argument(
        ...,
        metavar="TYPE",
        help="blocks|is_blocked_by|relates_to|duplicates|is_duplicated_by|clones|is_cloned_by",
    ),
    other: str = typer.Argument(..., metavar="OTHER", help="The other issue's key."),
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Link two issues: `rhythm issue link WEB-1 blocks WEB-2` (the inverse is recorded too)."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    made = run_with_core(
        data_dir, lambda core: issue_args.link(core, org_slug, key, kind, other, who)
    )
    if as_json:
        print_json(made)
    else:
        typer.echo(f"linked {key.upper()} {made.type} {made.issue}")


@app.command("unlink")
def unlink(
    key: str = KeyArgument,
    other: str = typer.Argument(..., metavar="OTHER", help="The other issue's key."),
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Remove the links between two issues (both directions)."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    removed = run_with_core(
        data_dir, lambda core: issue_args.unlink(core, org_slug, key, other, who)
    )
    typer.echo(f"unlinked {key.upper()} and {other.upper()} ({len(removed)} link(s))")


@app.command("links")
def links(
    key: str = KeyArgument,
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List an issue's links."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    found = run_with_core(data_dir, lambda core: issue_args.list_links(core, org_slug, key, who))
    if as_json:
        print_json(found)
    else:
        print_table([r.model_dump() for r in found], ["type", "issue", "title"])


@app.command("watch")
def watch(
    key: str = KeyArgument,
    off: bool = typer.Option(False, "--off", help="Stop watching (silences implicit reasons)."),
    org: str | None = OrgOption,
    user: str | None = typer.Option(
        None, "--as", help="Who watches (required: here, `rhythm use --as` or $RHYTHM_AS)."
    ),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Watch an issue (email about its changes), or stop with --off."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.someone("watches")
    state = run_with_core(
        data_dir, lambda core: issue_args.watch(core, org_slug, key, who, not off)
    )
    if as_json:
        print_json(state)
    else:
        reasons = f" ({', '.join(state.reasons)})" if state.reasons else ""
        typer.echo(f"{'watching' if state.watching else 'not watching'} {key.upper()}{reasons}")


@app.command("watchers")
def watchers(
    key: str = KeyArgument,
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Who gets email about an issue, and why."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who
    page = run_with_core(data_dir, lambda core: issue_args.list_watchers(core, org_slug, key, who))
    if as_json:
        print_json(page)
        return
    rows = [{"person": f"{w.display_name} <{w.email}>" if w.display_name else w.email,
             "reasons": ", ".join(w.reasons)} for w in page.items]  # fmt: skip
    print_table(rows, ["person", "reasons"])


DURATION = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?$")


def parse_duration(text: str) -> int:
    """`1h30m`, `2h`, `45m` or plain minutes -> seconds."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text) * 60
    match = DURATION.match(text)
    if not text or match is None:
        fail(f"expected a duration such as 1h30m, 2h or 45m, got {text!r}")
    hours, minutes = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60


@app.command("log-time")
def log_time(
    key: str = KeyArgument,
    spent: str = typer.Argument(..., metavar="DURATION", help="1h30m, 2h, 45m or minutes."),
    note: str = typer.Option("", "--note", "-m", help="What the time went into."),
    org: str | None = OrgOption,
    user: str | None = typer.Option(
        None, "--as", help="Who spent it (required: here, `rhythm use --as` or $RHYTHM_AS)."
    ),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Record time spent on an issue."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.someone("spent the time")
    seconds = parse_duration(spent)
    entry = run_with_core(
        data_dir, lambda core: issue_args.log_time(core, org_slug, key, seconds, note, who)
    )
    if as_json:
        print_json(entry)
    else:
        typer.echo(f"logged {seconds // 60} min on {key.upper()}")


def _progress(total: int) -> None:
    """A running count on stderr while a large file imports."""
    typer.echo(f"\r{total:,} issues imported", err=True, nl=False)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines file."),
    unknown_users_as_me: bool = typer.Option(
        False, help="People without an account become the importing user."
    ),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = typer.Option(
        None, "--as", help="Importing person (required: here, `rhythm use --as` or $RHYTHM_AS)."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Import issues (with comments) from a JSON Lines file, one issue per line.

    Each line: {"title": ..., "description", "type", "priority", "status" (stage name),
    "reporter" (email), "created_at", "updated_at", "resolved_at" (ISO 8601),
    "comments": [{"body", "author", "created_at"}]}; only "title" is required.
    The whole file is checked first: a bad line imports nothing.
    """
    from tracker.errors import ValidationFailed

    target = Target(data_dir, org, project, user)
    org_slug, key, who = target.org, target.project, target.someone("imports")

    async def work(core: Any) -> ImportReport | ValidationFailed:
        try:
            return await issue_args.import_file(
                core, org_slug, key, file, who,
                unknown_users_as_me=unknown_users_as_me, progress=_progress,
            )  # fmt: skip
        except ValidationFailed as failure:
            return failure

    report = run_with_core(data_dir, work)
    if isinstance(report, ValidationFailed):
        for error in report.errors:
            typer.echo(f"error: {error['field']}: {error['message']}", err=True)
        raise typer.Exit(1)
    if report.issues:
        typer.echo(err=True)  # end the progress line
    rate = report.issues / report.seconds if report.seconds else 0.0
    typer.echo(
        f"imported {report.issues:,} issues and {report.comments:,} comments into "
        f"{key.upper()} in {report.seconds:.1f} s ({rate:,.0f} issues/s)"
    )
