"""`rhythm org ...`: organizations on a data directory, no server needed.

Without a person the CLI acts with operator rights (it holds the files) and
changes are recorded as the system's. `--as EMAIL` names the person it acts for,
with their own roles (the matching route's permission, as over HTTP): the owner
of a new org, and the actor recorded in the change log (origin `cli`).
"""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from cli.context import DataDirOption, JsonOption, fail, print_json, print_table, run_with_core
from cli.target import AsOption, Target
from tracker.core import Core
from tracker.domain.changes import Actor, Origin
from tracker.domain.models.orgs import Org, OrgIn
from tracker.domain.permissions import Permission
from tracker.errors import ValidationFailed
from tracker.services import orgs
from tracker.services.accounts import Principal
from tracker.services.acting import act_as, actor_for, person

app = typer.Typer(help="Manage organizations.", no_args_is_help=True)


def validation_message(exc: ValidationError) -> str:
    """Every field error on one line: `field: message; ...`."""
    return ValidationFailed.from_pydantic(exc).detail


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Display name."),
    owner: str | None = typer.Option(
        None,
        "--as",
        help="Email of the owner (required: here, `rhythm use --as` or $RHYTHM_AS).",
    ),
    slug: str | None = typer.Option(None, help="URL slug (default: derived from the name)."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Create an organization (and its own database file)."""
    who = Target(data_dir, None, None, owner).someone("owns the organization")
    try:
        data = OrgIn(name=name, slug=slug)
    except ValidationError as exc:
        fail(validation_message(exc))
    org = run_with_core(data_dir, lambda core: _create(core, who, data), create=True)
    if as_json:
        print_json(org)
    else:
        typer.echo(f"created organization {org.slug} ({org.id})")


@app.command("list")
def list_orgs(
    user: str | None = AsOption,
    archived: bool = typer.Option(False, "--archived", help="List archived organizations."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List live organizations (all, or those of `--as`), or the archived ones."""
    user = Target(data_dir, None, None, user).who
    if archived:
        rows = run_with_core(data_dir, orgs.archived_orgs)
        columns = ["slug", "name", "archived_at", "archive_path", "id"]
    else:
        found = run_with_core(data_dir, lambda core: _list(core, user))
        rows = [org.model_dump() for org in found]
        columns = ["slug", "name", "role", "created_at", "id"]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, columns, title="Archived organizations" if archived else None)


@app.command("archive")
def archive(
    slug: str = typer.Argument(..., help="Slug of the organization."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Delete an organization: its folder moves to <data_dir>/.archive/<slug>-<time>/."""
    user = Target(data_dir, None, None, user).who
    path = run_with_core(data_dir, lambda core: _archive(core, slug, user))
    typer.echo(f"archived {slug} to {path}")


@app.command("restore")
def restore(
    archive_ref: str = typer.Argument(
        ..., metavar="ARCHIVE", help="Archive folder name (see `org list --archived`) or slug."
    ),
    slug: str | None = typer.Option(None, help="Restore under this slug (if the old is taken)."),
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Bring an archived organization back."""
    user = Target(data_dir, None, None, user).who
    org = run_with_core(data_dir, lambda core: _restore(core, archive_ref, slug, user))
    if as_json:
        print_json(org)
    else:
        typer.echo(f"restored organization {org.slug} ({org.id})")


@app.command("export")
def export(
    slug: str = typer.Argument(..., help="Slug of the organization."),
    file: Path = typer.Argument(..., help="The file to write (a tar)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Write one organization to a file (online: the server may run); see `org import`."""
    from cli.backup_client import via_server
    from cli.context import exit_code_of, load_settings, must_exist
    from cli.ops import plain_path
    from tracker.errors import BadRequest, RhythmError
    from tracker.services.org_transfer import export_org

    settings = load_settings(data_dir)
    must_exist(settings)
    if plain_path(file).exists():
        fail(f"{file} already exists")

    def server_copy(dest: Path) -> bool:
        """The running server's page copy of the org, if one answers and can write it."""
        try:
            return via_server(settings.data_dir, dest, slug) is not None
        except BadRequest as refused:  # e.g. the server's user cannot write next to FILE
            typer.echo(f"note: {refused.detail}; reading a snapshot instead", err=True)
            return False

    try:
        manifest = export_org(settings, slug, file, server_copy=server_copy)
    except RhythmError as error:
        fail(error.detail, exit_code_of(error))
    except OSError as exc:
        fail(f"export failed: {exc}")
    typer.echo(
        f"exported {slug}: {len(manifest['members'])} member(s), {manifest['files']} file(s), "
        f"change log up to seq {manifest['seq']} -> {file}"
        + (" (copied by the running server)" if manifest["copied_by"] == "server" else "")
    )


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="A file written by `rhythm org export`."),
    create_users: bool = typer.Option(
        False,
        "--create-users",
        help="Create people missing here as disabled accounts without a password.",
    ),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Import an exported organization (server stopped); people are mapped by email."""
    from tracker.services.org_transfer import import_org

    if not file.is_file():
        fail(f"no file {file}")
    done = run_with_core(data_dir, lambda core: import_org(core, file, create_users=create_users))
    if as_json:
        print_json(done)
        return
    typer.echo(f"imported organization {done['org']} ({done['id']}), {done['members']} member(s)")
    for email in done["created_users"]:
        typer.echo(f"created disabled account {email} (no password)")


async def _create(core: Core, owner: str, data: OrgIn) -> Org:
    """`--as EMAIL` becomes the owner."""
    user_id = await person(core, owner)
    return await orgs.create_org(core, Principal(user_id), data, Actor(user_id, Origin.CLI))


async def _list(core: Core, user: str | None) -> list[Org]:
    """Every live org (operator view), or only those of the user named by `--as`."""
    if user is None:
        return await orgs.all_live_orgs(core)
    return await orgs.orgs_of_user(core, await person(core, user))


async def _archive(core: Core, slug: str, user: str | None) -> str:
    access, actor = await act_as(
        core, slug, None, user, Origin.CLI, permission=Permission.ORG_DELETE
    )
    return await orgs.delete_org(core, access, actor)


async def _restore(core: Core, ref: str, slug: str | None, user: str | None) -> Org:
    return await orgs.restore_org(core, ref, slug, await actor_for(core, user, Origin.CLI))
