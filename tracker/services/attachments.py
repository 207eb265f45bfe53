"""Attachments: files on issues and comments — upload, list, serve, thumbnail, delete, check.

An upload streams each file to disk (never into memory), hashed while it
arrives, with the size limit enforced on the way (413, nothing left behind) and
the org's quota checked before it is kept (507). Files are kept under their hash
before the rows commit (storage/blobs.py), and the rows and their change rows
(`attachment` create/delete, part of the issue's history) commit in one unit of
work. Readers of the issue read its files; whoever may comment on it attaches;
the uploader or a project admin deletes (soft, like issues).
"""

from __future__ import annotations

import asyncio
import sqlite3
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.files import INLINE_IMAGES, safe_filename, sniff
from tracker.domain.ids import new_id
from tracker.domain.models.attachments import Attachment
from tracker.errors import (
    Forbidden,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    UnsupportedMediaType,
    ValidationFailed,
)
from tracker.services.access import ProjectAccess, read, read_org
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.comments import is_project_admin, issue_in
from tracker.services.runtime import Core
from tracker.storage import attachments as attachment_sql
from tracker.storage import blobs
from tracker.storage import comments as comment_sql

MIB = 1024 * 1024
#: Images with more pixels than this are never decoded for a thumbnail (a 20,000 x
#: 20,000 PNG is a few KB on the wire and 1.6 GB once decoded).
MAX_THUMBNAIL_SOURCE_PIXELS = 40_000_000
THUMBNAIL_SIZE = (320, 320)
#: A repair leaves files younger than this alone: an upload stores its file before
#: its row commits, and a file removed in between would leave the row pointing nowhere.
REPAIR_GRACE = 3600.0


@dataclass
class Upload:
    """One file of a multipart upload as the door hands it over: a name and its chunks."""

    filename: str | None
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class FileToServe:
    path: Path
    filename: str
    content_type: str
    sha256: str
    inline: bool


def tenant_dir(core: Core, org_id: str) -> Path:
    """The tenant's folder (the org id is checked to be a UUID: no path from URL text)."""
    return core.tenants.tenant_path(org_id).parent


def _url(access: ProjectAccess, attachment_id: str) -> str:
    return (
        f"/api/v1/orgs/{access.org.slug}/projects/{access.project.key}/attachments/{attachment_id}"
    )


def to_attachment(access: ProjectAccess, row: sqlite3.Row | dict[str, Any]) -> Attachment:
    url = _url(access, row["id"])
    return Attachment(
        id=row["id"],
        issue=f"{access.project.key}-{row['number']}",
        comment_id=row["comment_id"],
        filename=row["filename"],
        size=row["size"],
        content_type=row["content_type"],
        sha256=row["sha256"],
        uploaded_by=row["uploaded_by"],
        created_at=row["created_at"],
        url=url,
        thumbnail_url=url + "/thumbnail" if row["content_type"] in INLINE_IMAGES else None,
    )


# --- upload -------------------------------------------------------------------------------


async def upload(
    core: Core,
    access: ProjectAccess,
    number: int,
    files: AsyncIterator[Upload],
    actor: Actor,
    comment_id: str | None = None,
) -> list[Attachment]:
    """Store every file of the upload, then record them all in one unit of work."""
    project = access.project

    def check(conn: sqlite3.Connection) -> int:
        issue = issue_in(conn, project.id, number)
        if comment_id is not None:
            comment = comment_sql.comment_of_issue(conn, issue["id"], comment_id)
            if comment is None:
                raise ValidationFailed([("comment", "no such comment on this issue")])
        return attachment_sql.used_bytes(conn)

    used = await read(core, access, check)  # 404 before a byte is stored
    folder = tenant_dir(core, access.org.id)
    stored: list[tuple[str, str, str, int]] = []  # (filename, sha256, content type, size)
    async for item in files:
        sha256, content_type, size = await _receive(core, folder, item, used)
        used += size
        stored.append((safe_filename(item.filename), sha256, content_type, size))
    if not stored:
        raise ValidationFailed([("file", "send at least one file (multipart field 'file')")])

    def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        issue = issue_in(uow.conn, project.id, number)
        rows = []
        for filename, sha256, content_type, size in stored:
            row = {
                "id": new_id(), "project_id": project.id, "issue_id": issue["id"],
                "comment_id": comment_id, "filename": filename, "content_type": content_type,
                "size": size, "sha256": sha256, "uploaded_by": actor.user_id,
                "created_at": uow.at,
            }  # fmt: skip
            attachment_sql.insert(uow.conn, row)
            uow.record(Entity.ATTACHMENT, row["id"], Op.CREATE, project=project.id,
                       new=row, version=1, issue=issue["id"])  # fmt: skip
            rows.append({**row, "number": issue["number"]})
        return rows

    # A failed commit leaves the stored files behind (another upload of the same bytes
    # may be about to name them): `rhythm check --repair` removes files no row names.
    rows = await mutate(core, access, actor, work)
    return [to_attachment(access, row) for row in rows]


async def _receive(core: Core, folder: Path, item: Upload, used: int) -> tuple[str, str, int]:
    """Stream one file to disk under its hash; (sha256, content type, size)."""
    settings = core.settings
    limit = settings.max_attachment_mb * MIB
    quota = settings.org_quota_mb * MIB
    spool = await asyncio.to_thread(blobs.Spool, folder)
    try:
        async for chunk in item.chunks:
            if spool.size + len(chunk) > limit:
                raise PayloadTooLarge(f"an attachment may hold {settings.max_attachment_mb} MiB")
            if quota and used + spool.size + len(chunk) > quota:
                raise QuotaExceeded(
                    f"this organization's attachments may take {settings.org_quota_mb} MiB"
                )
            await asyncio.to_thread(spool.write, chunk)
        sha256 = await asyncio.to_thread(spool.keep)
    except BaseException:  # refused, or the client went away: nothing is left behind
        await asyncio.to_thread(spool.drop)
        raise
    return sha256, sniff(spool.head), spool.size


# --- read -----------------------------------------------------------------------------------


async def list_attachments(core: Core, access: ProjectAccess, number: int) -> list[Attachment]:
    project = access.project

    def fetch(conn: sqlite3.Connection) -> list[sqlite3.Row]:
        issue = issue_in(conn, project.id, number)
        return attachment_sql.of_issue(conn, issue["id"])

    return [to_attachment(access, row) for row in await read(core, access, fetch)]


async def _row(core: Core, access: ProjectAccess, attachment_id: str) -> sqlite3.Row:
    row = await read(
        core, access, lambda conn: attachment_sql.by_id(conn, access.project.id, attachment_id)
    )
    if row is None:
        raise NotFound("attachment not found")
    return row


async def file_to_serve(core: Core, access: ProjectAccess, attachment_id: str) -> FileToServe:
    """The stored file of an attachment and how to present it."""
    row = await _row(core, access, attachment_id)
    path = blobs.blob_path(tenant_dir(core, access.org.id), row["sha256"])
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("the file of this attachment is missing; run `rhythm check`")
    inline = row["content_type"] in INLINE_IMAGES
    return FileToServe(path, row["filename"], row["content_type"], row["sha256"], inline)


async def thumbnail(core: Core, access: ProjectAccess, attachment_id: str) -> Path:
    """A PNG of at most 320 x 320 pixels of an image attachment, made once and cached."""
    row = await _row(core, access, attachment_id)
    if row["content_type"] not in INLINE_IMAGES:
        raise UnsupportedMediaType("only PNG, JPEG, GIF and WebP images have thumbnails")
    folder = tenant_dir(core, access.org.id)
    return await asyncio.to_thread(_make_thumbnail, folder, row["sha256"])


def _make_thumbnail(folder: Path, sha256: str) -> Path:
    """Runs on a worker thread: Pillow decodes, never on the event loop."""
    from PIL import Image  # imported on first use: the server starts without it loaded

    target = blobs.thumbnail_path(folder, sha256)
    if target.is_file():
        return target
    source = blobs.blob_path(folder, sha256)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as image:  # reads the header only
                width, height = image.size
                if width * height > MAX_THUMBNAIL_SOURCE_PIXELS:
                    raise ValidationFailed(
                        [("file", f"{width} x {height} pixels is too large to preview")]
                    )
                image.draft("RGB", THUMBNAIL_SIZE)  # JPEG: decode at a reduced scale
                image.thumbnail(THUMBNAIL_SIZE)
                spool = target.with_name(target.name + ".part")
                image.convert("RGBA").save(spool, "PNG")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ValidationFailed([("file", "too large to preview")]) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ValidationFailed([("file", "not a readable image")]) from exc
    spool.replace(target)
    return target


# --- delete -----------------------------------------------------------------------------------


async def delete_attachment(
    core: Core, access: ProjectAccess, attachment_id: str, actor: Actor
) -> None:
    """Soft-delete (uploader or project admin); the file stays, the history says so."""
    project = access.project
    admin = is_project_admin(access)

    def work(uow: UnitOfWork) -> None:
        row = attachment_sql.by_id(uow.conn, project.id, attachment_id)
        if row is None:
            raise NotFound("attachment not found")
        if not admin and row["uploaded_by"] != actor.user_id:
            raise Forbidden("only the uploader or a project admin deletes an attachment")
        attachment_sql.set_deleted(uow.conn, attachment_id, uow.at)
        old = {k: row[k] for k in ("id", "filename", "content_type", "size", "sha256")}
        uow.record(Entity.ATTACHMENT, attachment_id, Op.DELETE, project=project.id,
                   old=old, issue=row["issue_id"])  # fmt: skip

    await mutate(core, access, actor, work)


# --- check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCheck:
    """Rows whose file is missing, and files no row names (orphans)."""

    missing: list[str]
    orphans: list[str]


async def check_files(
    core: Core, org_id: str, *, repair: bool = False, grace_seconds: float = REPAIR_GRACE
) -> FileCheck:
    """Compare an org's attachment rows with its files; with `repair`, remove orphans
    and spooled uploads older than `grace_seconds` (a file stored a moment ago may be
    waiting for its row to commit). A missing file cannot be repaired: it is reported."""
    folder = tenant_dir(core, org_id)
    on_disk = set(await asyncio.to_thread(lambda: list(blobs.stored_hashes(folder))))
    named = await read_org(core, org_id, attachment_sql.all_hashes)  # after the listing
    missing = sorted(named - on_disk)
    orphans = sorted(on_disk - named)
    if repair:
        await asyncio.to_thread(blobs.remove_older, folder, orphans, grace_seconds)
    return FileCheck(missing, orphans)
