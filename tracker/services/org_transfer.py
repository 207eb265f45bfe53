"""`rhythm org export SLUG FILE` / `rhythm org import FILE`: move one org between servers.

The file is a tar: `manifest.json` first (the org row, its members and every
other person its data names, each with their email; schema version, seq head,
checksums), then `tracker.db` (a consistent snapshot, taken while the server
runs, like a backup) and `files/ab/cdef…` (the attachment files it names).

Import goes onto a stopped server (through the core, which holds the data-dir
lock). People are mapped by email: a user id in the tenant becomes the id of
the account with that email on the target. An account missing on the target
is refused by default, naming the emails (create them first with `rhythm user
create`); with `create_users` each becomes a *disabled* account without a
password, keeping its id when free (so nobody can sign in as them until an
operator acts). Importing over a live slug, or an org id the target already
has, is refused. Every issue, comment, history and change-log row keeps its id;
the import starts a new sync epoch (replicas of the old server re-clone).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tracker import __version__
from tracker.domain.emails import normalize_email
from tracker.domain.ids import is_uuid, new_id, now_iso
from tracker.errors import BadRequest, Conflict, NotFound, SchemaTooNew
from tracker.services.runtime import Core
from tracker.settings import Settings
from tracker.storage import blobs, snapshots, sync_state, user_refs
from tracker.storage import orgs as org_sql
from tracker.storage.files import FILE_MODE, private_dir
from tracker.storage.migrate import latest_version
from tracker.storage.pool import TENANT_FILE

FORMAT = "rhythm-org"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_FILE_MEMBER = re.compile(r"^files/([0-9a-f]{2})/([0-9a-f]{62})$")
NO_PASSWORD = "!"  # never a valid argon2 hash: verify() answers False


# --- export ----------------------------------------------------------------------


def _org_and_people(system_db: Path, slug: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    conn = snapshots.read_only(system_db)
    conn.row_factory = sqlite3.Row
    try:
        org = conn.execute(
            "SELECT id, slug, name, created_by, created_at, updated_at FROM orgs "
            "WHERE slug = ? AND archived_at IS NULL",
            (slug,),
        ).fetchone()
        if org is None:
            raise NotFound(f"organization {slug} not found")
        members = conn.execute(
            "SELECT m.user_id, m.role, m.created_at, u.email, u.display_name "
            "FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? "
            "ORDER BY u.email",
            (org["id"],),
        ).fetchall()
        return dict(org), [dict(m) for m in members]
    finally:
        conn.close()


def _users(system_db: Path, ids: set[str]) -> list[dict[str, Any]]:
    conn = snapshots.read_only(system_db)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT id, email, display_name FROM users WHERE id IN (SELECT value FROM json_each(?))"
            " ORDER BY email",
            (json.dumps(sorted(ids)),),
        ).fetchall()
        return [dict(r) for r in rows]
    finally:
        conn.close()


def _all_user_ids(system_db: Path) -> set[str]:
    conn = snapshots.read_only(system_db)
    try:
        return {str(r[0]) for r in conn.execute("SELECT id FROM users")}
    finally:
        conn.close()


def export_org(
    settings: Settings,
    slug: str,
    file: Path,
    *,
    server_copy: Callable[[Path], bool] | None = None,
) -> dict[str, Any]:
    """Write one org (its database, files and people) to `file`; the server may be running.

    `server_copy(dest)` asks a running server for a one-org backup into the empty
    folder `dest` and says whether one answered (the CLI's: the backup socket). The
    database and its files then come from that copy, taken in page batches on the
    server's own connection, so its writers wait at most one batch. Without it, or
    with no server answering, from a read-only snapshot of the live file. The result
    is the file's manifest plus `copied_by` ("server" or "snapshot").
    """
    org, members = _org_and_people(settings.system_db_path, slug)
    with tempfile.TemporaryDirectory(dir=file.parent, prefix=".rhythm-export-") as work:
        copied = Path(work).resolve() / "backup"
        if server_copy is not None and server_copy(copied):
            source, copied_by = copied / org["id"], "server"
            db = source / TENANT_FILE
        else:
            source, copied_by = settings.data_dir / org["id"], "snapshot"
            db = Path(work) / TENANT_FILE
            snapshots.snapshot(source / TENANT_FILE, db)
        conn = sqlite3.connect(db)
        try:
            head = snapshots.head(conn)
            named = user_refs.referenced(conn, _all_user_ids(settings.system_db_path))
            hashes = [r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM attachments")]
        finally:
            conn.close()
        named |= {m["user_id"] for m in members}
        if org["created_by"]:
            named.add(org["created_by"])
        missing = [h for h in hashes if not blobs.blob_path(source, h).is_file()]
        if missing:
            raise Conflict(
                f"attachment files missing in {slug} ({', '.join(missing[:3])}…); "
                "run `rhythm check` first"
            )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "rhythm_version": __version__,
            "created_at": now_iso(),
            "org": org,
            "members": [
                {k: m[k] for k in ("user_id", "email", "role", "created_at")} for m in members
            ],
            "users": _users(settings.system_db_path, named),
            "schema_version": head.schema_version,
            "seq": head.seq,
            "epoch": head.epoch,
            "db": {"sha256": snapshots.sha256_of(db), "size": db.stat().st_size},
            "files": len(hashes),
        }
        tmp = file.with_name(file.name + ".partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
                tar.add(db, arcname=TENANT_FILE, recursive=False)
                for sha256 in sorted(hashes):
                    tar.add(blobs.blob_path(source, sha256), f"files/{sha256[:2]}/{sha256[2:]}")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, file)
        snapshots.fsync_dir(file.parent)
    return {**manifest, "copied_by": copied_by}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = FILE_MODE
    tar.addfile(info, io.BytesIO(data))


# --- import ------------------------------------------------------------------------


def _read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    first = tar.next()
    if first is None or first.name != MANIFEST or not first.isfile():
        raise BadRequest("not a Rhythm org export (manifest.json must come first)")
    stream = tar.extractfile(first)
    assert stream is not None
    try:
        manifest = json.loads(stream.read(16 * 1024 * 1024))
    except ValueError as exc:
        raise BadRequest(f"unreadable manifest: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BadRequest(f"not a version {FORMAT_VERSION} Rhythm org export")
    if not is_uuid(str(manifest["org"]["id"])):
        raise BadRequest("the export's org id is not a UUID")
    if int(manifest["schema_version"]) > latest_version("tenant"):
        raise SchemaTooNew("the export was written by a newer Rhythm; upgrade this one first")
    return dict(manifest)


def _copy_member(stream: IO[bytes], target: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(snapshots.CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _unpack(file: Path, folder: Path) -> dict[str, Any]:
    """Unpack into a new staging folder, verifying every member; only known names are
    written (the database and content-addressed files), never a path from the tar."""
    with tarfile.open(file, mode="r:*") as tar:
        manifest = _read_manifest(tar)
        seen_db, files = False, 0
        while (member := tar.next()) is not None:  # after the manifest, in stream order
            if not member.isfile():
                raise BadRequest(f"unexpected entry in the export: {member.name!r}")
            stream = tar.extractfile(member)
            assert stream is not None
            if member.name == TENANT_FILE and not seen_db:
                got = _copy_member(stream, folder / TENANT_FILE)
                if got != manifest["db"]["sha256"]:
                    raise BadRequest("checksum mismatch: tracker.db")
                seen_db = True
            elif match := _FILE_MEMBER.match(member.name):
                sha256 = match.group(1) + match.group(2)
                target = blobs.blob_path(folder, sha256)
                private_dir(target.parent, parents=True)
                if _copy_member(stream, target) != sha256:
                    raise BadRequest(f"checksum mismatch: {member.name}")
                files += 1
            else:
                raise BadRequest(f"unexpected entry in the export: {member.name!r}")
        if not seen_db or files != manifest["files"]:
            raise BadRequest("the export is incomplete")
    return manifest


def _prepare_db(db: Path, mapping: dict[str, str]) -> str:
    """Rewrite user ids, rebuild the search index if its text changed, new epoch."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        if user_refs.remap(conn, mapping):
            user_refs.rebuild_search(conn)
        epoch = sync_state.renew_epoch(conn)
        conn.execute("COMMIT")
        faults = [r[0] for r in conn.execute("PRAGMA quick_check") if r[0] != "ok"]
        if faults:
            raise BadRequest(f"the exported database is not sound: {faults[0]}")
    finally:
        conn.close()  # the last connection checkpoints: one file
    snapshots.fsync_file(db)
    return epoch


def _plan_people(
    conn: sqlite3.Connection, manifest: dict[str, Any], create_users: bool
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Source user id -> target user id, and the accounts to create (placeholders)."""
    mapping: dict[str, str] = {}
    to_create: list[dict[str, Any]] = []
    for user in manifest["users"]:
        found = conn.execute(
            "SELECT id FROM users WHERE email = ? COLLATE NOCASE", (normalize_email(user["email"]),)
        ).fetchone()
        if found is not None:
            mapping[user["id"]] = str(found[0])
            continue
        taken = conn.execute("SELECT 1 FROM users WHERE id = ?", (user["id"],)).fetchone()
        new = new_id() if taken else user["id"]
        mapping[user["id"]] = new
        to_create.append({**user, "id": new})
    if to_create and not create_users:
        emails = ", ".join(sorted(u["email"] for u in to_create))
        raise NotFound(
            f"these people have no account here: {emails}; create them first "
            "(`rhythm user create`) or pass --create-users (disabled accounts, no password)"
        )
    return mapping, to_create


async def import_org(core: Core, file: Path, *, create_users: bool = False) -> dict[str, Any]:
    """Import an export into this (stopped server's) data directory."""
    data_dir = core.settings.data_dir
    staging = Path(
        await asyncio.to_thread(tempfile.mkdtemp, prefix=".rhythm-import-", dir=data_dir)
    )
    try:
        manifest = await asyncio.to_thread(_unpack, file, staging)
        org = manifest["org"]

        def plan(conn: sqlite3.Connection) -> tuple[dict[str, str], list[dict[str, Any]]]:
            if org_sql.slug_taken(conn, org["slug"]):
                raise Conflict(f"an organization {org['slug']} already exists here")
            if org_sql.org_by_id(conn, org["id"]) is not None:
                raise Conflict(f"organization id {org['id']} already exists here (archived?)")
            return _plan_people(conn, manifest, create_users)

        mapping, to_create = await core.system.read(plan)
        epoch = await asyncio.to_thread(_prepare_db, staging / TENANT_FILE, mapping)
        folder = data_dir / org["id"]
        await asyncio.to_thread(_move_into_place, staging, folder)
        at = now_iso()
        creator = mapping.get(org["created_by"]) if org["created_by"] else None

        def register(conn: sqlite3.Connection) -> None:
            for user in to_create:
                conn.execute(
                    "INSERT INTO users (id, email, display_name, password_hash, created_at, "
                    "updated_at, disabled_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user["id"], normalize_email(user["email"]), user["display_name"],
                     NO_PASSWORD, at, at, at),
                )  # fmt: skip
            if org_sql.slug_taken(conn, org["slug"]):
                raise Conflict(f"an organization {org['slug']} already exists here")
            conn.execute(
                "INSERT INTO orgs (id, slug, name, created_by, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (org["id"], org["slug"], org["name"], creator, org["created_at"], at),
            )
            for member in manifest["members"]:
                conn.execute(
                    "INSERT INTO org_members (org_id, user_id, role, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (org["id"], mapping[member["user_id"]], member["role"], member["created_at"]),
                )

        try:
            await core.system.write(register)
        except BaseException:
            await asyncio.to_thread(snapshots.remove_tree, folder)
            raise
        return {
            "org": org["slug"],
            "id": org["id"],
            "epoch": epoch,
            "members": len(manifest["members"]),
            "created_users": sorted(u["email"] for u in to_create),
            "mapped": {u["email"]: mapping[u["id"]] for u in manifest["users"]},
        }
    finally:
        await asyncio.to_thread(snapshots.remove_tree, staging)


def _move_into_place(staging: Path, folder: Path) -> None:
    if folder.exists():
        raise Conflict(f"{folder} already exists")
    os.chmod(staging, 0o700)
    os.replace(staging, folder)
    snapshots.fsync_dir(folder.parent)
