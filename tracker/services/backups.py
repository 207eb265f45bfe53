"""`rhythm backup` and `rhythm restore` (docs/operations-data.md).

A backup is a directory: the system DB, each tenant's DB and the attachment
files its snapshot names, and `manifest.json` (versions, schema versions, seq
heads, epochs, and the SHA-256 and size of every file). It is taken while the
server runs, without its lock: each database is copied from its own read-only
snapshot (tracker.storage.snapshots), tenants first and the system DB last, so
every user a tenant names is in the copied system DB. An org created during the
backup is copied after the system DB (it appears there).

A restore goes onto a stopped server (it takes the data-dir lock), checks every
checksum before copying anything, moves what it replaces aside (nothing is
deleted), and renews every restored tenant's sync epoch so replicas re-clone.

These functions block (file I/O, SQLite): run them in a thread from async code.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker import __version__
from tracker.domain.ids import is_uuid, now_iso
from tracker.errors import BadRequest, Conflict, NotFound
from tracker.settings import Settings
from tracker.storage import blobs, snapshots, sync_state
from tracker.storage.files import FILE_MODE, private_dir
from tracker.storage.pool import TENANT_FILE, DataDirLock

MANIFEST = "manifest.json"
FORMAT = "rhythm-backup"
FORMAT_VERSION = 1
SYSTEM_FILE = "_system.db"


@dataclass
class BackupReport:
    manifest: dict[str, Any]
    missing_files: list[str] = field(default_factory=list)  # "<slug>: <sha256>"
    seconds: float = 0.0


def live_orgs(system_db: Path) -> list[tuple[str, str]]:
    conn = snapshots.read_only(system_db)
    try:
        rows = conn.execute(
            "SELECT id, slug FROM orgs WHERE archived_at IS NULL ORDER BY slug"
        ).fetchall()
    finally:
        conn.close()
    return [(str(r[0]), str(r[1])) for r in rows]


def _attachment_hashes(db: Path) -> list[str]:
    conn = snapshots.read_only(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
        if "attachments" not in tables:
            return []
        return [r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM attachments ORDER BY 1")]
    finally:
        conn.close()


def copy_tenant(
    data_dir: Path, org_id: str, dest_dir: Path, checksums: dict[str, dict[str, Any]], prefix: str
) -> tuple[dict[str, Any], list[str]]:
    """Snapshot one tenant into `dest_dir` (its db, then the files its snapshot names).
    Returns the tenant's manifest entry and the missing hashes (`tenant_entry`)."""
    snapshots.snapshot(data_dir / org_id / TENANT_FILE, dest_dir / TENANT_FILE)
    return tenant_entry(data_dir, org_id, dest_dir, checksums, prefix)


def tenant_entry(
    data_dir: Path, org_id: str, dest_dir: Path, checksums: dict[str, dict[str, Any]], prefix: str
) -> tuple[dict[str, Any], list[str]]:
    """After a tenant's database is copied into `dest_dir`: its checksum, the files
    the copy names, and its manifest entry (head read from the copy).

    Files are immutable and stored before the row naming them commits, so every
    hash of the copy has its file (unless it is already missing: reported).
    Returns the tenant's manifest entry and the missing hashes.
    """
    source = data_dir / org_id
    db = dest_dir / TENANT_FILE
    checksums[f"{prefix}{TENANT_FILE}"] = checksum_of(db)
    missing = []
    count = 0
    for sha256 in _attachment_hashes(db):
        src = blobs.blob_path(source, sha256)
        if not src.is_file():
            missing.append(sha256)
            continue
        target = blobs.blob_path(dest_dir, sha256)
        got = snapshots.copy_file(src, target)
        if got != sha256:  # a content-addressed file must hash to its name
            target.unlink()
            missing.append(sha256)
            continue
        rel = target.relative_to(dest_dir).as_posix()
        checksums[f"{prefix}{rel}"] = {"sha256": got, "size": target.stat().st_size}
        count += 1
    head = snapshots.head_of(db)
    entry = {
        "id": org_id,
        "path": f"{prefix}{TENANT_FILE}",
        "schema_version": head.schema_version,
        "seq": head.seq,
        "epoch": head.epoch,
        "files": count,
    }
    return entry, missing


def checksum_of(path: Path) -> dict[str, Any]:
    return {"sha256": snapshots.sha256_of(path), "size": path.stat().st_size}


def empty_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise Conflict(f"{dest} exists and is not an empty directory")
    private_dir(dest, parents=True)


def write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(value, file, indent=2, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    snapshots.fsync_dir(path.parent)


def backup(settings: Settings, dest: Path, org_slug: str | None = None) -> BackupReport:
    """Copy the system DB and every live tenant (or the one named) into `dest`."""
    started = time.monotonic()
    data_dir = settings.data_dir
    system_db = settings.system_db_path
    if not system_db.is_file():
        raise NotFound(f"{data_dir} is not a Rhythm data directory (no {SYSTEM_FILE})")
    orgs = live_orgs(system_db)
    if org_slug is not None:
        orgs = [(i, s) for i, s in orgs if s == org_slug]
        if not orgs:
            raise NotFound(f"organization {org_slug} not found")
    empty_destination(dest)
    checksums: dict[str, dict[str, Any]] = {}
    entries: list[dict[str, Any]] = []
    missing: list[str] = []

    def take(org_id: str, slug: str) -> None:
        if not is_uuid(org_id) or not (data_dir / org_id / TENANT_FILE).is_file():
            return  # an org row whose folder was never created holds nothing to copy
        entry, lost = copy_tenant(data_dir, org_id, dest / org_id, checksums, f"{org_id}/")
        entries.append({**entry, "slug": slug})
        missing.extend(f"{slug}: {sha256}" for sha256 in lost)

    for org_id, slug in orgs:
        take(org_id, slug)
    snapshots.snapshot(system_db, dest / SYSTEM_FILE)  # last: it names every user they name
    checksums[SYSTEM_FILE] = checksum_of(dest / SYSTEM_FILE)
    if org_slug is None:  # orgs created meanwhile are in the copied system DB: copy them too
        done = {e["id"] for e in entries}
        for org_id, slug in live_orgs(dest / SYSTEM_FILE):
            if org_id not in done:
                take(org_id, slug)
    manifest = write_manifest(dest, org_slug, entries, missing, checksums)
    return BackupReport(manifest, missing, time.monotonic() - started)


def write_manifest(
    dest: Path,
    org_slug: str | None,
    entries: list[dict[str, Any]],
    missing: list[str],
    checksums: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Write the manifest of the copies in `dest` (the last file of a backup)."""
    system_head = snapshots.head_of(dest / SYSTEM_FILE)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rhythm_version": __version__,
        "sqlite_version": sqlite3.sqlite_version,
        "created_at": now_iso(),
        "scope": "org" if org_slug else "all",
        "system": {"path": SYSTEM_FILE, "schema_version": system_head.schema_version},
        "orgs": sorted(entries, key=lambda e: e["slug"]),
        "missing_files": missing,
        "checksums": dict(sorted(checksums.items())),
    }
    write_json(dest / MANIFEST, manifest)
    return manifest


# --- restore -------------------------------------------------------------------


def read_manifest(src: Path) -> dict[str, Any]:
    path = src / MANIFEST
    if not path.is_file():
        raise BadRequest(f"{src} is not a Rhythm backup (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadRequest(f"{path} is not readable JSON: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BadRequest(f"{path} is not a version {FORMAT_VERSION} Rhythm backup manifest")
    return dict(manifest)


def _safe_rel(rel: str) -> Path:
    """A manifest path, refused unless it is a plain relative path (no `..`, no root)."""
    path = Path(rel)
    if path.is_absolute() or any(part in ("..", "", ".") for part in path.parts):
        raise BadRequest(f"unsafe path in manifest: {rel!r}")
    return path


def verify(src: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest names is present with its size and SHA-256."""
    for rel, expected in manifest["checksums"].items():
        path = src / _safe_rel(rel)
        if not path.is_file():
            raise BadRequest(f"backup file missing: {rel}")
        if (
            path.stat().st_size != expected["size"]
            or snapshots.sha256_of(path) != expected["sha256"]
        ):
            raise BadRequest(f"checksum mismatch: {rel}")


def renew_epoch_of(db: Path) -> str | None:
    """Start a new sync history in a tenant file (None before migration 0014: the
    migration gives it a fresh epoch when the server opens it)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
        epoch = sync_state.renew_epoch(conn) if "sync_state" in tables else None
        conn.execute("COMMIT")
        return epoch
    finally:
        conn.close()


def _move_aside(paths: list[Path], attic: Path) -> None:
    for path in paths:
        if path.exists():
            private_dir(attic, parents=True)
            os.replace(path, attic / path.name)


def restore(settings: Settings, src: Path, *, replace: bool = False) -> dict[str, Any]:
    """Restore a backup directory onto a stopped server's data directory.

    Whole backups replace the system DB and every tenant; `--org` backups replace
    only their tenant (the org must already exist there with the same id). What is
    replaced moves to `<data_dir>/.before-restore-<time>/` (with `replace`), so a
    mistaken restore can be undone by hand.
    """
    manifest = read_manifest(src)
    verify(src, manifest)
    data_dir = settings.data_dir
    private_dir(data_dir, parents=True)
    lock = DataDirLock(data_dir)
    lock.acquire()  # refuses while a server (or another command) holds the data dir
    try:
        return _restore_locked(settings, src, manifest, replace)
    finally:
        lock.release()


def _restore_locked(
    settings: Settings, src: Path, manifest: dict[str, Any], replace: bool
) -> dict[str, Any]:
    data_dir = settings.data_dir
    whole = manifest["scope"] == "all"
    org_ids = [str(org["id"]) for org in manifest["orgs"]]
    if not all(is_uuid(org_id) for org_id in org_ids):
        raise BadRequest("the manifest names an organization id that is not a UUID")
    system_db = settings.system_db_path
    if not whole:
        if not system_db.is_file():
            raise NotFound("an organization's backup restores onto an existing data directory")
        live = dict(live_orgs(system_db))
        absent = [org["slug"] for org in manifest["orgs"] if org["id"] not in live]
        if absent:
            raise NotFound(
                f"organization {', '.join(absent)} is not on this server with the same id "
                "(use `rhythm org import` to move an organization)"
            )
    replaced = [data_dir / org_id for org_id in org_ids if (data_dir / org_id).exists()]
    if whole:
        replaced += [p for p in data_dir.iterdir() if is_uuid(p.name) and p not in replaced]
        replaced += [
            data_dir / (SYSTEM_FILE + suffix)
            for suffix in ("", "-wal", "-shm")
            if (data_dir / (SYSTEM_FILE + suffix)).exists()
        ]
    if replaced and not replace:
        raise Conflict(
            f"{data_dir} already holds data this backup would replace; pass --replace "
            "(the old files are moved aside, not deleted)"
        )
    attic = data_dir / f".before-restore-{time.strftime('%Y%m%dT%H%M%S')}"
    _move_aside(replaced, attic)
    for rel in manifest["checksums"]:
        path = _safe_rel(rel)
        if not whole and path.as_posix() == SYSTEM_FILE:
            continue
        snapshots.copy_file(src / path, data_dir / path)
    for org_id in org_ids:
        snapshots.fsync_dir(data_dir / org_id)
    snapshots.fsync_dir(data_dir)
    epochs = {org_id: renew_epoch_of(data_dir / org_id / TENANT_FILE) for org_id in org_ids}
    return {
        "scope": manifest["scope"],
        "orgs": [org["slug"] for org in manifest["orgs"]],
        "epochs": epochs,
        "moved_aside": str(attic) if replaced else None,
    }
