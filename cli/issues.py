"""`rhythm issue ...`: issue work on a data directory, no server needed.

Operator rights, as `rhythm org`/`project` (see cli/orgs.py); `--as EMAIL`
names the reporter/author recorded in the change log (required to create or
comment). Issues are named by key: `rhythm issue show WEB-42 -o acme`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli import issue_args
from cli import search as search_cli
from cli.context import DataDirOption, JsonOption, fail, print_json, print_table, run_with_core
from cli.orgs import AsOption
from tracker.domain.models.imports import ImportReport
from tracker.domain.models.issues import Issue
from tracker.errors import ValidationFailed

app = typer.Typer(help="Create, list, show, update and comment on issues.", no_args_is_help=True)
app.command("search")(search_cli.search)

OrgOption = typer.Option(..., "--org", "-o", help="Organization slug.")
ProjectOption = typer.Option(..., "--project", "-p", help="Project key, e.g. WEB.")
FieldOption = typer.Option(
    None, "--field", "-f", help="Custom field NAME=VALUE (repeatable; empty VALUE unsets)."
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


def _show(issue: Issue, as_json: bool) -> None:
    if as_json:
        print_json(issue)
        return
    typer.echo(f"{issue.key}  {issue.title}")
    typer.echo(f"  status {issue.status} · {issue.priority} · {issue.type} · v{issue.version}")
    for label, value in (
        ("assignees", ", ".join(issue.assignees)), ("tags", ", ".join(issue.tags)),
        ("parent", issue.parent), ("due", issue.due_date), ("estimate", issue.estimate),
        ("custom", ", ".join(f"{k}={v}" for k, v in issue.custom_fields.items())),
    ):  # fmt: skip
        if value:
            typer.echo(f"  {label}: {value}")
    if issue.description:
        typer.echo("\n" + issue.description)


@app.command("create")
def create(
    title: str = typer.Argument(..., help="Title (1-500 characters)."),
    org: str = OrgOption,
    project: str = ProjectOption,
    description: str | None = typer.Option(None, "--description", "-m", help="Markdown body."),
    type_: str | None = typer.Option(None, "--type", help="bug|feature|task|improvement|..."),
    priority: str | None = typer.Option(None, help="critical|major|normal|minor"),
    status: str | None = typer.Option(None, help="Stage name (default: the first todo stage)."),
    assignee: list[str] | None = typer.Option(None, "--assignee", help="User id (repeatable)."),
    tag: list[str] | None = typer.Option(None, "--tag", help="Tag name (repeatable)."),
    parent: str | None = typer.Option(None, help="Parent issue key, e.g. WEB-7."),
    due: str | None = typer.Option(None, help="Due date, YYYY-MM-DD."),
    estimate: int | None = typer.Option(None, help="Estimate in minutes."),
    field: list[str] | None = FieldOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Create an issue (`--as EMAIL` is the reporter)."""
    data = _given(
        title=title, description=description, type=type_, priority=priority, status=status,
        assignees=assignee, tags=tag, parent=parent, due_date=due, estimate=estimate,
    )  # fmt: skip
    issue = run_with_core(
        data_dir,
        lambda core: issue_args.create_issue(core, org, project, data, _fields(field), user),
    )
    if as_json:
        print_json(issue)
    else:
        typer.echo(f"created {issue.key}: {issue.title}")


@app.command("list")
def list_issues(
    org: str = OrgOption,
    project: str = ProjectOption,
    status: str | None = typer.Option(None, help="Stage names, comma-separated."),
    assignee: str | None = typer.Option(None, help="User ids, `none`."),
    tag: str | None = typer.Option(None, help="Tag names, comma-separated."),
    priority: str | None = typer.Option(None, help="Priorities, comma-separated."),
    type_: str | None = typer.Option(None, "--type", help="Types, comma-separated."),
    sort: str | None = typer.Option(None, help="number|created|updated|priority + -asc/-desc."),
    limit: int = typer.Option(50, min=1, max=200, help="How many issues."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List a project's issues (newest first by default)."""
    filters = _given(status=status, assignee=assignee, tag=tag, priority=priority,
                     type=type_, sort=sort, limit=limit)  # fmt: skip
    page = run_with_core(
        data_dir, lambda core: issue_args.list_issues(core, org, project, filters, user)
    )
    if as_json:
        print_json(page)
        return
    rows = [{**i.model_dump(), "assignees": ", ".join(i.assignees)} for i in page.items]
    print_table(rows, COLUMNS)
    if page.next_cursor:
        typer.echo(f"(more than {limit}; raise --limit or filter)")


@app.command("show")
def show(
    key: str = typer.Argument(..., help="Issue key, e.g. WEB-42."),
    org: str = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one issue."""
    issue = run_with_core(data_dir, lambda core: issue_args.show_issue(core, org, key, user))
    _show(issue, as_json)


@app.command("update")
def update(
    key: str = typer.Argument(..., help="Issue key, e.g. WEB-42."),
    org: str = OrgOption,
    title: str | None = typer.Option(None, help="New title."),
    description: str | None = typer.Option(None, "--description", "-m", help="New body."),
    type_: str | None = typer.Option(None, "--type", help="New type."),
    priority: str | None = typer.Option(None, help="New priority."),
    status: str | None = typer.Option(None, help="Move to this stage."),
    assignee: list[str] | None = typer.Option(None, "--assignee", help="Replace assignees."),
    tag: list[str] | None = typer.Option(None, "--tag", help="Replace tags."),
    parent: str | None = typer.Option(None, help="New parent key (`none` to detach)."),
    due: str | None = typer.Option(None, help="Due date YYYY-MM-DD (`none` to clear)."),
    estimate: int | None = typer.Option(None, help="Estimate in minutes."),
    field: list[str] | None = FieldOption,
    if_version: int | None = typer.Option(None, help="Refuse if the issue is past this version."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Change the fields given; the others stay as they are."""
    data = _given(
        title=title, description=description, type=type_, priority=priority, status=status,
        assignees=assignee, tags=tag, estimate=estimate,
    )  # fmt: skip
    for name, value in (("parent", parent), ("due_date", due)):
        if value is not None:
            data[name] = None if value.lower() == "none" else value
    issue = run_with_core(
        data_dir,
        lambda core: issue_args.update_issue(
            core, org, key, data, _fields(field), user, if_version
        ),
    )
    _show(issue, as_json)


@app.command("comment")
def comment(
    key: str = typer.Argument(..., help="Issue key, e.g. WEB-42."),
    body: str = typer.Argument(..., help="Comment text (markdown)."),
    org: str = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Comment on an issue (`--as EMAIL` is the author)."""
    made = run_with_core(data_dir, lambda core: issue_args.comment(core, org, key, body, user))
    if as_json:
        print_json(made)
    else:
        typer.echo(f"commented on {key.upper()} ({made.id})")


def _progress(total: int) -> None:
    """A running count on stderr while a large file imports."""
    typer.echo(f"\r{total:,} issues imported", err=True, nl=False)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines file."),
    org: str = OrgOption,
    project: str = ProjectOption,
    unknown_users_as_me: bool = typer.Option(
        False, help="People without an account become the importing user."
    ),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Import issues (with comments) from a JSON Lines file, one issue per line.

    Each line: {"title": ..., "description", "type", "priority", "status" (stage name),
    "reporter" (email), "created_at", "updated_at", "resolved_at" (ISO 8601),
    "comments": [{"body", "author", "created_at"}]}; only "title" is required.
    The whole file is checked first: a bad line imports nothing.
    """

    async def work(core: Any) -> ImportReport | ValidationFailed:
        try:
            return await issue_args.import_file(
                core, org, project, file, user,
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
        f"{project.upper()} in {report.seconds:.1f} s ({rate:,.0f} issues/s)"
    )
