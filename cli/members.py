"""`rhythm member ...`: org members, or with `--project KEY` project members.

Operator rights (see cli/orgs.py); `--as EMAIL` names the actor in the change log.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.context import DataDirOption, JsonOption, print_json, print_table, run_with_core
from cli.orgs import AsOption
from tracker.services import members

app = typer.Typer(help="Manage org and project members.", no_args_is_help=True)

ProjectOption = typer.Option(None, "--project", "-p", help="Project key: act on its members.")


@app.command("add")
def add(
    org: str = typer.Argument(..., help="Organization slug."),
    email: str = typer.Argument(..., help="Email of an existing user."),
    role: str = typer.Option(
        "member", help="Org: owner|admin|member. Project: viewer|reporter|developer|admin."
    ),
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Add a user to an organization (or, with --project, give them a project role)."""
    if project is not None and role == "member":
        role = "reporter"
    added = run_with_core(
        data_dir, lambda core: members.add_member_as(core, org, project, email, role, user)
    )
    if as_json:
        print_json(added)
    else:
        typer.echo(f"added {added.email} to {org}{'/' + project if project else ''} as {role}")


@app.command("list")
def list_members(
    org: str = typer.Argument(..., help="Organization slug."),
    project: str | None = ProjectOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List the members of an organization or project."""
    found = run_with_core(data_dir, lambda core: members.list_members_as(core, org, project))
    rows = [member.model_dump() for member in found]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["email", "display_name", "role", "user_id"])


@app.command("remove")
def remove(
    org: str = typer.Argument(..., help="Organization slug."),
    email: str = typer.Argument(..., help="Email of the member."),
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Remove a member (from the org, which also ends their project memberships)."""
    run_with_core(data_dir, lambda core: members.remove_member_as(core, org, project, email, user))
    typer.echo(f"removed {email} from {org}{'/' + project if project else ''}")
