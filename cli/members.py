"""`rhythm member ...`: org members, or with `--project KEY` project members.

Operator rights, or `--as EMAIL` with that person's roles (see cli/orgs.py).
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.context import DataDirOption, JsonOption, print_json, print_table, run_with_core
from cli.issue_args import validated
from cli.target import AsOption, Target
from tracker.core import Core
from tracker.domain.changes import Origin
from tracker.domain.models.orgs import (
    ListQuery,
    OrgMember,
    OrgMemberIn,
    ProjectMember,
    ProjectMemberIn,
)
from tracker.domain.permissions import Permission
from tracker.services import members
from tracker.services.acting import act_as, person

app = typer.Typer(help="Manage org and project members.", no_args_is_help=True)

ProjectOption = typer.Option(None, "--project", "-p", help="Project key: act on its members.")


@app.command("add")
def add(
    org: str = typer.Argument(..., help="Organization slug."),
    email: str = typer.Argument(..., help="Email of an existing user, or `me`."),
    role: str = typer.Option(
        "member", help="Org: owner|admin|member. Project: viewer|reporter|developer|admin."
    ),
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Add a user to an organization (or, with --project, give them a project role)."""
    target = Target(data_dir, None, None, user)
    email, user = target.person(email), target.who
    if project is not None and role == "member":
        role = "reporter"
    added = run_with_core(data_dir, lambda core: _add(core, org, project, email, role, user))
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
    found = run_with_core(data_dir, lambda core: _list(core, org, project))
    rows = [member.model_dump() for member in found]
    if as_json:
        print_json(found)
    else:
        print_table(rows, ["display_name", "email", "role"])


@app.command("remove")
def remove(
    org: str = typer.Argument(..., help="Organization slug."),
    email: str = typer.Argument(..., help="Email of the member, or `me`."),
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Remove a member (from the org, which also ends their project memberships)."""
    target = Target(data_dir, None, None, user)
    email, user = target.person(email), target.who
    run_with_core(data_dir, lambda core: _remove(core, org, project, email, user))
    typer.echo(f"removed {email} from {org}{'/' + project if project else ''}")


async def _add(
    core: Core, org: str, project: str | None, email: str, role: str, user: str | None
) -> OrgMember | ProjectMember:
    if project is None:
        data = validated(OrgMemberIn, {"email": email, "role": role})
        access, actor = await act_as(
            core, org, None, user, Origin.CLI, permission=Permission.ORG_MANAGE
        )
        return await members.add_org_member(core, access, data, actor)
    pdata = validated(ProjectMemberIn, {"email": email, "role": role})
    paccess, actor = await act_as(
        core, org, project, user, Origin.CLI, permission=Permission.MEMBERS_MANAGE
    )
    return await members.add_project_member(core, paccess, pdata, actor)


async def _list(core: Core, org: str, project: str | None) -> list[OrgMember] | list[ProjectMember]:
    query = ListQuery(limit=200)
    if project is None:
        access, _ = await act_as(core, org, None, None, Origin.CLI)
        found: list[OrgMember] = []
        while True:
            page = await members.list_org_members(core, access, query)
            found.extend(page.items)
            if page.next_cursor is None:
                return found
            query = ListQuery(limit=200, cursor=page.next_cursor)
    paccess, _ = await act_as(core, org, project, None, Origin.CLI)
    items: list[ProjectMember] = []
    while True:
        ppage = await members.list_project_members(core, paccess, query)
        items.extend(ppage.items)
        if ppage.next_cursor is None:
            return items
        query = ListQuery(limit=200, cursor=ppage.next_cursor)


async def _remove(core: Core, org: str, project: str | None, email: str, user: str | None) -> None:
    if project is None:
        access, actor = await act_as(
            core, org, None, user, Origin.CLI, permission=Permission.ORG_MANAGE
        )
        await members.remove_org_member(core, access, await person(core, email), actor)
    else:
        paccess, actor = await act_as(
            core, org, project, user, Origin.CLI, permission=Permission.MEMBERS_MANAGE
        )
        await members.remove_project_member(core, paccess, await person(core, email), actor)
