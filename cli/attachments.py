"""`rhythm issue attach|attachments`: files on issues from the command line."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import typer

from cli import issue_args
from cli.context import DataDirOption, JsonOption, fail, print_json, print_table, run_with_core
from cli.target import AsOption, OrgOption, Target
from tracker.core import Core
from tracker.domain.models.attachments import Attachment, AttachmentList
from tracker.domain.permissions import Permission
from tracker.services import attachments

CHUNK = 256 * 1024


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK):
            yield chunk


async def _uploads(paths: list[Path]) -> AsyncIterator[attachments.Upload]:
    for path in paths:
        yield attachments.Upload(path.name, _chunks(path))


async def _attach(
    core: Core, org: str, key: str, paths: list[Path], email: str | None
) -> list[Attachment]:
    access, actor, number = await issue_args.issue_by_key(
        core, org, key, email, Permission.COMMENT_CREATE
    )
    issue_args.someone(actor, "attaches files")
    return await attachments.upload(core, access, number, _uploads(paths), actor)


async def _list(
    core: Core, org: str, key: str, email: str | None, download: Path | None
) -> list[Attachment]:
    access, _, number = await issue_args.issue_by_key(
        core, org, key, email, Permission.PROJECT_READ
    )
    items = await attachments.list_attachments(core, access, number)
    if download is not None:
        await asyncio.to_thread(download.mkdir, parents=True, exist_ok=True)
        for item in items:
            served = await attachments.file_to_serve(core, access, item.id)
            target = download / f"{item.id[-8:]}-{item.filename}"
            await asyncio.to_thread(shutil.copyfile, served.path, target)
    return items


def attach(
    key: str = typer.Argument(..., help="Issue key, e.g. WEB-42."),
    files: list[Path] = typer.Argument(..., help="Files to attach."),
    org: str | None = OrgOption,
    user: str | None = typer.Option(
        None, "--as", help="Who attaches (required: here, `rhythm use --as` or $RHYTHM_AS)."
    ),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Attach files to an issue."""
    for path in files:
        if not path.is_file():
            fail(f"{path}: not a file")
    from cli import offline

    replica = offline.replica_path(data_dir)
    if replica is not None:  # queued in the replica's outbox; `rhythm sync` uploads it
        offline.attach(replica, key, files, as_json)
        return
    target = Target(data_dir, org, None, user)
    org, user = target.org, target.someone("attaches files")
    items = run_with_core(data_dir, lambda core: _attach(core, org, key, files, user))
    _show(items, as_json)


def list_attachments(
    key: str = typer.Argument(..., help="Issue key, e.g. WEB-42."),
    org: str | None = OrgOption,
    user: str | None = AsOption,
    download: Path | None = typer.Option(None, help="Save every file into this folder."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List an issue's attachments (and download them with --download DIR)."""
    target = Target(data_dir, org, None, user)
    org, user = target.org, target.who
    from cli import offline

    replica = offline.replica_path(data_dir)
    fetch_here = None if replica is not None else download
    items = run_with_core(data_dir, lambda core: _list(core, org, key, user, fetch_here))
    if replica is not None and download is not None:  # bytes on demand, from the server
        offline.download_attachments(replica, [(i.url, i.id, i.filename) for i in items], download)
    if replica is not None:  # and what waits in the outbox for `rhythm sync`
        offline.show_attachments_with_pending(replica, key, items, as_json)
        return
    _show(items, as_json)


def _show(items: list[Attachment], as_json: bool) -> None:
    if as_json:
        print_json(AttachmentList(items=items))
        return
    print_table([i.model_dump() for i in items], ["id", "filename", "size", "content_type"])


def register(app: typer.Typer) -> None:
    """Add the commands to the `rhythm issue` group."""
    app.command("attach")(attach)
    app.command("attachments")(list_attachments)
