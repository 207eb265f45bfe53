"""Offline attachments: queued in the replica's outbox, uploaded by `rhythm sync`.

`rhythm issue attach KEY FILE…` on a replica copies each file into
`<replica>/outbox/<id>` (written to a temp name, fsynced, renamed) and records a
`pending_uploads` row in replica.db. `rhythm sync` sends them after the push (so an
issue created offline exists on the server and has its real key) through the REST
upload route, then deletes the copy. A refused upload keeps its copy and its row
with the server's problem (listed by `rhythm sync --rejected`); a network or server
fault leaves it pending for the next sync. The server stores one attachment row per
upload, so a row already attempted once (the answer may have been lost) is first
looked for among the issue's attachments by sha256 and filename (docs/offline.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.domain.files import safe_filename
from tracker.domain.ids import new_id, now_iso
from tracker.errors import NotFound
from tracker.replica.errors import SyncError

if TYPE_CHECKING:
    from tracker.replica.client import SyncClient
    from tracker.replica.engine import Replica, Report

OUTBOX = "outbox"
CHUNK = 1 << 20
#: Answers that mean "not now" (kept pending, retried at the next sync), not "never".
RETRY_STATUSES = frozenset({0, 408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Pending:
    id: str
    issue_id: str
    issue_key: str
    filename: str
    size: int
    sha256: str
    path: str
    created_at: str
    attempted: bool
    problem: dict[str, Any] | None

    @classmethod
    def of(cls, row: sqlite3.Row) -> Pending:
        problem = json.loads(row["problem"]) if row["problem"] else None
        return cls(row["id"], row["issue_id"], row["issue_key"], row["filename"], row["size"],
                   row["sha256"], row["path"], row["created_at"], bool(row["attempted"]),
                   problem)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def file(self, replica_dir: Path) -> Path:
        """The queued copy (`path` is relative to the replica, so a moved replica keeps it)."""
        return replica_dir / self.path


# --- queueing (the CLI, no event loop) ------------------------------------------------------


def queue(replica: Replica, key: str, paths: list[Path]) -> list[Pending]:
    """Copy each file into the outbox and record it; the issue must be in the view."""
    from tracker.replica.commands import View

    view = View(replica)
    try:
        row = view.issue(key)
    finally:
        view.close()
    shown = key.upper() if "~" not in key else key
    outbox = replica.dir / OUTBOX
    outbox.mkdir(mode=0o700, exist_ok=True)
    queued = []
    for source in paths:
        upload_id = new_id()
        target = outbox / upload_id
        size, digest = _copy(source, target)
        item = Pending(upload_id, row["id"], shown, safe_filename(source.name), size, digest,
                       f"{OUTBOX}/{upload_id}", now_iso(), False, None)  # fmt: skip
        with replica.journal.transaction() as conn:
            conn.execute(
                "INSERT INTO pending_uploads (id, issue_id, issue_key, filename, size, sha256,"
                " path, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (item.id, item.issue_id, item.issue_key, item.filename, item.size, item.sha256,
                 item.path, item.created_at),
            )  # fmt: skip
        queued.append(item)
    return queued


def _copy(source: Path, target: Path) -> tuple[int, str]:
    """A durable copy (temp name, fsync, rename) and its size and sha256."""
    tmp = target.with_name(target.name + ".tmp")
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, tmp.open("wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(target)
    return size, digest.hexdigest()


def listed(
    replica: Replica, issue_id: str | None = None, *, refused: bool | None = None
) -> list[Pending]:
    """Queued uploads (of one issue; only refused ones, or only waiting ones)."""
    sql, args = "SELECT * FROM pending_uploads WHERE 1", []
    if issue_id is not None:
        sql, args = sql + " AND issue_id = ?", [issue_id]
    if refused is not None:
        sql += " AND problem IS NOT NULL" if refused else " AND problem IS NULL"
    rows = replica.journal.conn.execute(sql + " ORDER BY created_at, id", args).fetchall()
    return [Pending.of(r) for r in rows]


def for_key(replica: Replica, key: str) -> list[Pending]:
    """The queued uploads of the issue `key` names in the view ([] if none)."""
    from tracker.replica.commands import View

    view = View(replica)
    try:
        issue_id = view.issue(key)["id"]
    except NotFound:
        return []
    finally:
        view.close()
    return listed(replica, issue_id)


def drop(replica: Replica, upload_id: str) -> Pending | None:
    """Forget one queued upload and delete its copy (the person gave up on it)."""
    found = [p for p in listed(replica) if p.id == upload_id or p.id.endswith(upload_id)]
    if len(found) != 1:
        return None
    with replica.journal.transaction() as conn:
        conn.execute("DELETE FROM pending_uploads WHERE id = ?", (found[0].id,))
    found[0].file(replica.dir).unlink(missing_ok=True)
    return found[0]


# --- sending (inside `rhythm sync`) --------------------------------------------------------


async def send(replica: Replica, client: SyncClient, report: Report) -> None:
    """Upload every waiting file whose issue exists on the server; results go in
    `report.uploads` as {upload, status: uploaded|already_there|refused|waiting, ...}."""
    waiting = listed(replica, refused=False)
    if not waiting:
        return
    creates = {str(m.args.get("id")): m for m in replica.journal.pending()
               if m.name == "issue.create"}  # fmt: skip
    refused_creates = {str(r["args"].get("id")) for r in replica.journal.rejected()
                       if r["name"] == "issue.create"}  # fmt: skip
    for item in waiting:
        if item.issue_id in creates:
            report.uploads.append({"upload": item.as_dict(), "status": "waiting",
                                   "detail": "its issue is not on the server yet"})  # fmt: skip
            continue
        if item.issue_id in refused_creates:
            problem = {"code": "dependency_rejected", "status": 424,
                       "detail": "the issue it was attached to was never created"}  # fmt: skip
            _refuse(replica, item, problem, report)
            continue
        key = _server_key(replica, item.issue_id)
        if key is None:
            problem = {"code": "not_found", "status": 404,
                       "detail": "its issue is no longer in this replica"}  # fmt: skip
            _refuse(replica, item, problem, report)
            continue
        try:
            status = await _send_one(client, replica, item, key)
        except SyncError as error:
            if error.status in RETRY_STATUSES or error.status == 401:
                report.uploads.append({"upload": item.as_dict(), "status": "waiting",
                                       "detail": error.words()})  # fmt: skip
                continue
            problem = {**error.problem, "status": error.status, "code": error.code}
            problem.setdefault("detail", error.words())
            _refuse(replica, item, problem, report)
            continue
        with replica.journal.transaction() as conn:
            conn.execute("DELETE FROM pending_uploads WHERE id = ?", (item.id,))
        item.file(replica.dir).unlink(missing_ok=True)
        report.uploads.append({"upload": item.as_dict(), "status": status, "key": key})


def _refuse(replica: Replica, item: Pending, problem: dict[str, Any], report: Report) -> None:
    with replica.journal.transaction() as conn:
        conn.execute("UPDATE pending_uploads SET problem = ? WHERE id = ?",
                     (json.dumps(problem), item.id))  # fmt: skip
    report.uploads.append({"upload": item.as_dict(), "status": "refused", "problem": problem})


def _server_key(replica: Replica, issue_id: str) -> str | None:
    """The issue's real key: from the push's answer (created here) or from base."""
    row = replica.journal.conn.execute(
        "SELECT key FROM issue_keys WHERE issue_id = ? AND provisional = 0 ORDER BY rowid DESC",
        (issue_id,),
    ).fetchone()
    if row is not None:
        return str(row[0])
    from tracker.replica.engine import TENANT_DB, connect

    conn = connect(replica.base / replica.org_id / TENANT_DB)
    try:
        found = conn.execute(
            "SELECT p.key, i.number FROM issues i JOIN projects p ON p.id = i.project_id"
            " WHERE i.id = ? AND i.deleted_at IS NULL", (issue_id,),
        ).fetchone()  # fmt: skip
    finally:
        conn.close()
    return None if found is None else f"{found[0]}-{found[1]}"


async def _send_one(client: SyncClient, replica: Replica, item: Pending, key: str) -> str:
    project, _, number = key.rpartition("-")
    path = f"/orgs/{replica.org}/projects/{project}/issues/{number}/attachments"
    if item.attempted:  # an earlier try may have been stored with its answer lost
        listing = await client.request("GET", path, "attachments")
        for existing in listing.get("items", []):
            if existing.get("sha256") == item.sha256 and existing.get("filename") == item.filename:
                return "already_there"
    with replica.journal.transaction() as conn:
        conn.execute("UPDATE pending_uploads SET attempted = 1 WHERE id = ?", (item.id,))
    await _post(client, path, item, item.file(replica.dir))
    return "uploaded"


async def _post(client: SyncClient, path: str, item: Pending, source: Path) -> Any:
    """One multipart POST (a fresh body per try: one refresh-and-retry on 401)."""
    import aiohttp

    from tracker.replica.client import _call

    assert client.session is not None
    if client.access is None:
        await client.refresh()
    for attempt in (1, 2):
        with source.open("rb") as body:
            form = aiohttp.FormData()
            form.add_field("file", body, filename=item.filename,
                           content_type="application/octet-stream")  # fmt: skip
            try:
                return await _call(client.session, "POST", client.base + path, what="upload",
                                   headers={"Authorization": f"Bearer {client.access}"},
                                   data=form)  # fmt: skip
            except SyncError as error:
                if error.status == 401 and attempt == 1:
                    await client.refresh()
                    continue
                raise
    raise AssertionError("unreachable")


def carry_over(old: Path, new: Path) -> int:
    """Re-cloning over a replica: its queued uploads (rows and copies) move to the new
    one, copied (the old folder is only replaced once the new one is complete)."""
    if not (old / "replica.db").is_file():
        return 0
    from tracker.replica.store import Journal

    previous, fresh = Journal(old / "replica.db"), Journal(new / "replica.db")
    try:
        rows = previous.conn.execute("SELECT * FROM pending_uploads").fetchall()
        if rows:
            (new / OUTBOX).mkdir(mode=0o700, exist_ok=True)
        for row in rows:
            item = Pending.of(row)
            if item.file(old).is_file():
                _copy(item.file(old), item.file(new))
            columns = row.keys()
            with fresh.transaction() as conn:
                conn.execute(
                    f"INSERT OR REPLACE INTO pending_uploads ({', '.join(columns)})"
                    f" VALUES ({', '.join('?' for _ in columns)})",
                    tuple(row),
                )
    finally:
        previous.close()
        fresh.close()
    return len(rows)
