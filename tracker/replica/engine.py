"""Clone, push, pull and sync one replica (docs/offline.md).

    base/  server state as of the cursor: written only here, by snapshot and pull
    view/  base + pending mutations replayed: what every command reads

The view is rebuilt (a copy of base, then the pending mutations replayed) when
base moved while the view held local guesses; while it holds none, pulled
changes go to both. A clone (and a re-clone after a reset) fills a temporary
directory and swaps it in only when caught up, so a killed clone leaves the old
replica and its journal untouched.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.domain.ids import new_id, now_iso
from tracker.errors import Conflict, NotFound
from tracker.replica import drafts, uploads
from tracker.replica.apply import Applier, put_user
from tracker.replica.drafts import Draft
from tracker.replica.mutations import issue_of, local_changes, provisional_key
from tracker.replica.paths import replica_dir, set_active
from tracker.replica.store import Journal, Mutation, ReplicaLock

if TYPE_CHECKING:  # the network side loads only when a command talks to a server
    from tracker.replica.client import Credentials, SyncClient

SYSTEM_DB, TENANT_DB = "_system.db", "tracker.db"
PUSH_MAX, PUSH_MAX_BYTES = 100, 1024 * 1024
CLOCK_WARNING_SECONDS = 120
#: Pauses before pushing again after the server stopped a batch early (`incomplete`);
#: after the last one the rest stays pending for the next sync.
INCOMPLETE_RETRY_SECONDS = (0.2, 1.0, 3.0)
LOAD_CACHE_KIB = 256 * 1024  # page cache while a snapshot loads (freed when it is done)


#: What a replica's snapshot holds: "2" adds sprints, custom fields and project members
#: (with names). A replica cloned with less is re-cloned once by its next pull (pending
#: kept), since pull only sends what changed and would never fill them in.
SNAPSHOT_FORMAT = "2"


def device_now() -> datetime:
    """This computer's clock: shown and compared with the server's, never used to order."""
    return datetime.now(UTC)


# --- data directories --------------------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    """One connection, used by one thread at a time (a worker thread applies pages while
    the event loop reads the next one; never two at once)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def loading(conn: sqlite3.Connection) -> None:
    """A snapshot into a clone's temporary directory: no WAL (each page written once, not
    to the log and then again into the file), no fsync, a big page cache. Safe because
    that directory is renamed into place only once complete: a crash or a failed load
    leaves a folder the next clone removes, never a replica (docs/offline.md)."""
    conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(f"PRAGMA cache_size=-{LOAD_CACHE_KIB}")


def loaded(conn: sqlite3.Connection) -> None:
    """Back to the settings every data directory has (`connect`)."""
    conn.execute("PRAGMA cache_size=-2000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")


def make_data_dir(path: Path, org: Mapping[str, Any], people: Iterable[Mapping[str, Any]]) -> None:
    """An empty data directory shaped like a server's, holding one org and its people."""
    from tracker.storage.migrate import apply_migrations

    (path / org["id"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    for name in (SYSTEM_DB, f"{org['id']}/{TENANT_DB}"):
        os.close(os.open(path / name, os.O_WRONLY | os.O_CREAT, 0o600))
    with closing(connect(path / SYSTEM_DB)) as system:
        apply_migrations(system, "system")
        system.execute("BEGIN")
        system.execute(
            "INSERT OR REPLACE INTO orgs (id, slug, name, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (org["id"], org["slug"], org.get("name") or org["slug"], now_iso(), now_iso()),
        )
        fill_directory(system, org["id"], people)
        system.execute("COMMIT")
    with closing(connect(path / org["id"] / TENANT_DB)) as tenant:
        apply_migrations(tenant, "tenant")


def fill_directory(
    system: sqlite3.Connection, org_id: str, people: Iterable[Mapping[str, Any]]
) -> None:
    for person in people:
        put_user(system, {"id": person["user_id"], **person})
        system.execute(
            "INSERT OR REPLACE INTO org_members (org_id, user_id, role, created_at)"
            " VALUES (?, ?, ?, ?)",
            (org_id, person["user_id"], person.get("role") or "member",
             person.get("created_at") or now_iso()),
        )  # fmt: skip


def copy_data_dir(source: Path, target: Path, org_id: str) -> None:
    """A consistent copy of both databases (SQLite's online backup), nothing else."""
    if target.exists():
        shutil.rmtree(target)
    (target / org_id).mkdir(parents=True, mode=0o700)
    os.chmod(target, 0o700)
    for name in (SYSTEM_DB, f"{org_id}/{TENANT_DB}"):
        os.close(os.open(target / name, os.O_WRONLY | os.O_CREAT, 0o600))  # private from birth
        with (
            closing(sqlite3.connect(source / name)) as src,
            closing(sqlite3.connect(target / name)) as dst,
        ):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")


def copy_closed_data_dir(source: Path, target: Path, org_id: str) -> None:
    """`copy_data_dir` for a directory no connection has open (a clone's temporary folder,
    before it is renamed into place): after a checkpoint the files themselves are the
    databases, and copying them whole is cheaper than a page-by-page backup."""
    if target.exists():
        shutil.rmtree(target)
    (target / org_id).mkdir(parents=True, mode=0o700)
    os.chmod(target, 0o700)
    for name in (SYSTEM_DB, f"{org_id}/{TENANT_DB}"):
        with closing(sqlite3.connect(source / name)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file
        os.close(os.open(target / name, os.O_WRONLY | os.O_CREAT, 0o600))  # private from birth
        shutil.copyfile(source / name, target / name)


def swap_dir(new: Path, current: Path) -> None:
    """Put `new` where `current` is; a crash leaves one of the two complete."""
    trash = current.with_name(current.name + ".old")
    if trash.exists():
        shutil.rmtree(trash)
    if current.exists():
        current.rename(trash)
    new.rename(current)
    if trash.exists():
        shutil.rmtree(trash)


@dataclass
class Data:
    """Open connections to one data directory's system and tenant databases."""

    system: sqlite3.Connection
    tenant: sqlite3.Connection

    @classmethod
    def open(cls, path: Path, org_id: str) -> Data:
        return cls(connect(path / SYSTEM_DB), connect(path / org_id / TENANT_DB))

    def close(self) -> None:
        self.system.close()
        self.tenant.close()

    @contextmanager
    def transaction(self) -> Iterator[Applier]:
        self.tenant.execute("BEGIN IMMEDIATE")
        self.system.execute("BEGIN IMMEDIATE")
        try:
            yield Applier(self.tenant, self.system)
        except BaseException:
            self.tenant.execute("ROLLBACK")
            self.system.execute("ROLLBACK")
            raise
        self.tenant.execute("COMMIT")
        self.system.execute("COMMIT")


# --- the replica ---------------------------------------------------------------------------


@dataclass
class Report:
    """What one sync did, for words (tracker.replica.words) and --json."""

    pushed: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    local_rejects: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    pulled: int = 0
    people: set[str] = field(default_factory=set)
    removed_projects: list[str] = field(default_factory=list)
    added_projects: list[str] = field(default_factory=list)
    reset: str | None = None
    recloned: bool = False
    clock_offset: float | None = None
    stopped: str | None = None
    retried: int = 0  # pushes sent again after the server stopped a batch early
    new_client: bool = False
    lost_acked: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)  # tracker/replica/uploads.py
    drafts: list[Draft] = field(default_factory=list)  # text edits kept_both: to resolve

    @property
    def rejected(self) -> int:
        return (
            sum(1 for _, r in self.pushed if r.get("status") == "rejected")
            + len(self.local_rejects)
            + sum(1 for u in self.uploads if u["status"] == "refused")
        )

    @property
    def deferred(self) -> int:
        return sum(1 for _, r in self.pushed if r.get("status") == "deferred")


class Replica:
    """One replica directory: its journal, base and view."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        if not (directory / "replica.db").is_file():
            raise NotFound(f"no replica at {directory} (run `rhythm clone ORG[/PROJECT]`)")
        self.journal = Journal(directory / "replica.db")
        meta = self.journal.meta()
        self.url, self.org, self.org_id = meta["server"], meta["org"], meta["org_id"]
        self.user_id, self.email = meta["user_id"], meta["email"]

    @property
    def base(self) -> Path:
        return self.dir / "base"

    @property
    def view(self) -> Path:
        return self.dir / "view"

    def close(self) -> None:
        self.journal.close()

    def lock(self) -> ReplicaLock:
        return ReplicaLock(self.dir)

    # --- offline work -------------------------------------------------------------------

    def record(self, name: str, args: dict[str, Any], label: str) -> Mutation:
        """Journal one mutation (durably, first), then show its effect in the view."""
        with self.lock():
            mutation = self.journal.record(name, args, label)
            data = Data.open(self.view, self.org_id)
            try:
                with data.transaction() as applier:
                    applier.keep_log = False
                    for change in local_changes(data.tenant, name, args, self.user_id, mutation.at):
                        applier.apply(change)
                    if name == "issue.create":
                        self._remember_provisional(data.tenant, args)
            finally:
                data.close()
            self.journal.set(view_local=str(int(self.journal.get("view_local") or 0) + 1))
        return mutation

    def _remember_provisional(self, conn: sqlite3.Connection, args: Mapping[str, Any]) -> None:
        row = conn.execute(
            "SELECT key FROM projects WHERE id = ?", (args["project_id"],)
        ).fetchone()
        if row is not None:
            self.journal.remember_key(provisional_key(row[0], args["id"]), args["id"], True)

    def rebuild_view(self) -> None:
        """view := base + pending replayed (the rebase)."""
        fresh = self.dir / "view.new"
        copy_data_dir(self.base, fresh, self.org_id)
        secret = self.base / ".jwt_secret"
        if secret.exists():
            shutil.copy2(secret, fresh / ".jwt_secret")
        pending = self.journal.pending()
        if pending:
            data = Data.open(fresh, self.org_id)
            try:
                with data.transaction() as applier:
                    applier.keep_log = False
                    for m in pending:
                        for change in local_changes(
                            data.tenant, m.name, m.args, self.user_id, m.at
                        ):
                            applier.apply(change)
            finally:
                data.close()
        swap_dir(fresh, self.view)
        self.journal.set(view_local=str(len(pending)))

    # --- push -----------------------------------------------------------------------------

    async def push(self, client: SyncClient, report: Report) -> None:
        """Push pending mutations in id order until none are left or the server stops us."""
        failed_creates = self._rejected_creates()
        busy = 0
        while True:
            batch = self._next_batch(failed_creates, report)
            if not batch:
                return
            client_id = self.journal.require("client_id")
            from tracker.replica.errors import SyncError

            try:
                answer = await client.push(client_id, [m.wire() for m in batch], now_iso())
            except SyncError as error:
                if error.code in ("client-id-reused", "client-unknown", "mutation-gap"):
                    await self._new_client(client, report)
                    continue
                raise
            self._clock(answer.get("server_time"), report)
            results = {int(r["id"]): r for r in answer.get("results", [])}
            answered = []
            for m in batch:
                result = results.get(m.id)
                if result is None or result.get("status") == "deferred":
                    if result is not None:
                        report.pushed.append((_as_dict(m), result))
                    break
                answered.append((m, result))
                report.pushed.append((_as_dict(m), result))
                if result.get("status") == "rejected" and m.name == "issue.create":
                    failed_creates.add(str(m.args["id"]))
                assigned = result.get("assigned") or {}
                if m.name == "issue.create" and assigned.get("key"):
                    self.journal.remember_key(assigned["key"], m.args["id"], False)
                    old = self._provisional_of(m.args["id"])
                    if old:
                        report.renamed.append((old, assigned["key"]))
            where = {m.id: self._text_target(m) for m, r in answered
                     if r.get("status") == "kept_both"}  # fmt: skip
            report.drafts += self.journal.settle(client_id, answered, where)
            if report.deferred:
                report.stopped = "deferred"
                return
            if answer.get("incomplete") or len(answered) < len(batch):
                # a transient stop (the server was busy): what it answered is settled;
                # the rest goes again (the server replays anything it had committed)
                if busy >= len(INCOMPLETE_RETRY_SECONDS):
                    report.stopped = "incomplete"
                    return
                await asyncio.sleep(INCOMPLETE_RETRY_SECONDS[busy])
                busy += 1
                report.retried += 1

    def _next_batch(self, failed_creates: set[str], report: Report) -> list[Mutation]:
        """Up to 100 mutations / 1 MiB. Those that depend on a rejected create are rejected
        here (`dependency_rejected`), never sent; the rest are renumbered to stay gap-free."""
        dropped = False
        for m in self.journal.pending():
            if issue_of(m.name, m.args) in failed_creates and m.name != "issue.create":
                problem = {"code": "dependency_rejected", "status": 424,
                           "title": "Depends on a rejected change",
                           "detail": "the issue it refers to was never created (its create"
                                     " was rejected)"}  # fmt: skip
                self.journal.reject_locally(m, problem)
                report.local_rejects.append((_as_dict(m), {"status": "rejected",
                                                           "problem": problem}))  # fmt: skip
                dropped = True
        if dropped:
            last = int(self.journal.get("last_mutation_id") or 0)
            self.journal.renumber(self.journal.require("client_id"), last + 1)
        batch: list[Mutation] = []
        size = 0
        for m in self.journal.pending(PUSH_MAX):
            size += len(json.dumps(m.args)) + 200
            if batch and size > PUSH_MAX_BYTES:
                break
            batch.append(m)
        return batch

    def _text_target(self, m: Mutation) -> tuple[str, str]:
        """(issue id, key) a text edit is on, from base (the server's numbers), else from
        the keys the journal knows, else the mutation's label."""
        issue_id = str(m.args.get("id") or "")
        with closing(connect(self.base / self.org_id / TENANT_DB)) as conn:
            if m.name == "comment.edit":
                row = conn.execute("SELECT issue_id FROM comments WHERE id = ?",
                                   (issue_id,)).fetchone()  # fmt: skip
                issue_id = str(row[0]) if row else ""
            row = conn.execute(
                "SELECT p.key || '-' || i.number FROM issues i JOIN projects p"
                " ON p.id = i.project_id WHERE i.id = ?", (issue_id,),
            ).fetchone()  # fmt: skip
        if row is not None:
            return issue_id, str(row[0])
        known = self.journal.conn.execute(
            "SELECT key FROM issue_keys WHERE issue_id = ? ORDER BY provisional LIMIT 1",
            (issue_id,),
        ).fetchone()
        return issue_id, str(known[0]) if known else (m.label.split(" ")[0] or m.name)

    def _rejected_creates(self) -> set[str]:
        return {str(r["args"].get("id")) for r in self.journal.rejected()
                if r["name"] == "issue.create"}  # fmt: skip

    def _provisional_of(self, issue_id: str) -> str | None:
        row = self.journal.conn.execute(
            "SELECT key FROM issue_keys WHERE issue_id = ? AND provisional = 1", (issue_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    async def _new_client(self, client: SyncClient, report: Report) -> None:
        """A copied replica, an unknown client or a gap: a new client id, pending from 1."""
        scope = [s for s in (self.journal.get("scope") or "*").split(",") if s]
        answer = await client.register(scope, _device())
        self.journal.renumber(answer["client_id"])
        report.new_client = True

    # --- pull -----------------------------------------------------------------------------

    async def pull(self, client: SyncClient, report: Report) -> None:
        """Pull until caught up; a reset re-clones (pending kept), and so does a replica
        whose snapshot predates kinds it should hold (SNAPSHOT_FORMAT)."""
        if self.journal.get("snapshot_format") != SNAPSHOT_FORMAT:
            await self.reclone(client)
            report.recloned = True
        while True:
            cursor = self.journal.require("cursor")
            page = await client.pull(self.journal.require("client_id"), cursor)
            self._clock(page.get("server_time"), report)
            if page.get("reset"):
                report.reset = str(page["reset"].get("reason") or "reset")
                if report.reset == "epoch":
                    report.lost_acked = self.journal.acked()
                await self.reclone(client)
                report.recloned = True
                return
            scope = page.get("scope") or {}
            if scope.get("removed"):
                self._drop_projects(scope["removed"], report)
            for key in scope.get("snapshot") or []:
                await self._snapshot_project(client, key)
                report.added_projects.append(key)
            items = page.get("items") or []
            self._apply_pulled(items)
            self.journal.set(cursor=page["cursor"])
            report.pulled += len(items)
            report.people |= {i["actor"] for i in items if i.get("actor")} - {self.user_id}
            if not page.get("has_more"):
                return

    def _apply_pulled(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        clean = int(self.journal.get("view_local") or 0) == 0
        for target in (self.base, self.view) if clean else (self.base,):
            data = Data.open(target, self.org_id)
            try:
                with data.transaction() as applier:
                    applier.keep_log = True
                    applier.apply_all(items)
            finally:
                data.close()
        if not clean:
            self.journal.set(view_dirty="1")

    def _drop_projects(self, keys: list[str], report: Report) -> None:
        """Access lost: the project's data leaves base and view; its pending mutations are
        rejected here as `not_found` (their text kept)."""
        for target in (self.base, self.view):
            data = Data.open(target, self.org_id)
            try:
                ids = []
                with data.transaction() as applier:
                    for key in keys:
                        row = data.tenant.execute(
                            "SELECT id FROM projects WHERE key = ? COLLATE NOCASE", (key,)
                        ).fetchone()
                        if row is not None:
                            ids.append(row[0])
                            if target == self.base:
                                self._reject_for_project(data.tenant, row[0], key, report)
                            applier.drop_project(row[0])
            finally:
                data.close()
        report.removed_projects += keys
        self.journal.set(view_dirty="1")

    def _reject_for_project(
        self, conn: sqlite3.Connection, project_id: str, key: str, report: Report
    ) -> None:
        issues = {r[0] for r in conn.execute("SELECT id FROM issues WHERE project_id = ?",
                                             (project_id,))}  # fmt: skip
        for m in self.journal.pending():
            target = m.args.get("project_id") or issue_of(m.name, m.args)
            if target == project_id or target in issues:
                problem = {"code": "not_found", "status": 404, "title": "Not found",
                           "detail": f"{key} is no longer visible to you"}  # fmt: skip
                self.journal.reject_locally(m, problem)
                report.local_rejects.append((_as_dict(m), {"status": "rejected",
                                                           "problem": problem}))  # fmt: skip

    async def _snapshot_project(self, client: SyncClient, key: str) -> None:
        data = Data.open(self.base, self.org_id)
        try:
            with data.transaction() as applier:
                async for line in client.snapshot(self.journal.require("client_id"), project=key):
                    apply_snapshot_line(applier, line)
        finally:
            data.close()
        self.journal.set(view_dirty="1")

    # --- clone again ------------------------------------------------------------------------

    async def reclone(self, client: SyncClient) -> None:
        """A fresh base from a snapshot (into a temp dir, swapped in when caught up); the
        journal and its pending mutations stay."""
        meta = self.journal.meta()
        tmp = self.dir / "base.new"
        if tmp.exists():
            shutil.rmtree(tmp)
        people = await client.members()
        make_data_dir(tmp, {"id": self.org_id, "slug": self.org}, people)
        info = await client.info()
        cursor = await fill_from_snapshot(client, tmp, self.org_id, meta["client_id"], info,
                                          self.user_id)  # fmt: skip
        cursor = await catch_up(client, tmp, self.org_id, meta["client_id"], cursor)
        swap_dir(tmp, self.base)
        self.journal.set(cursor=cursor, epoch=cursor.rpartition(".")[0], view_dirty="1",
                         snapshot_format=SNAPSHOT_FORMAT)  # fmt: skip

    def _clock(self, server_time: str | None, report: Report) -> None:
        if not server_time:
            return
        try:
            server = datetime.fromisoformat(server_time.replace("Z", "+00:00"))
        except ValueError:
            return
        report.clock_offset = (device_now() - server).total_seconds()

    # --- the whole loop -----------------------------------------------------------------------

    async def sync(self, client: SyncClient, *, push: bool = True, pull: bool = True) -> Report:
        report = Report()
        with self.lock():
            await self.refresh_directory(client)
            if push:
                await self.push(client, report)
                await uploads.send(self, client, report)  # after the push: its issues exist
            if pull:
                await self.pull(client, report)
            if pull and (
                self.journal.get("view_dirty") == "1"
                or int(self.journal.get("view_local") or 0) > self.journal.pending_count()
            ):
                self.rebuild_view()
                self.journal.set(view_dirty=None)
            self.journal.set(last_sync=now_iso(), clock_offset=str(report.clock_offset or 0))
        return report

    async def refresh_directory(self, client: SyncClient) -> None:
        """People of the org (names and emails for tables), for base and view."""
        from tracker.replica.errors import SyncError

        try:
            people = await client.members()
        except SyncError as error:
            if error.status in (401, 403, 426, 0):
                raise
            return
        for target in (self.base, self.view):
            data = Data.open(target, self.org_id)
            try:
                data.system.execute("BEGIN IMMEDIATE")
                fill_directory(data.system, self.org_id, people)
                # people who left the org leave the directory (their names stay for history)
                data.system.execute(
                    "DELETE FROM org_members WHERE org_id = ? AND user_id NOT IN"
                    " (SELECT value FROM json_each(?))",
                    (self.org_id, json.dumps([p["user_id"] for p in people])),
                )
                data.system.execute("COMMIT")
            finally:
                data.close()


def _as_dict(m: Mutation) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "v": m.v, "args": m.args, "at": m.at, "label": m.label}


def _device() -> str:
    return socket.gethostname()[:100] or "cli"


# --- clone ---------------------------------------------------------------------------------


def apply_snapshot_line(applier: Applier, line: Mapping[str, Any]) -> None:
    entity = line.get("entity")
    if not entity or "data" not in line:
        return
    data = dict(line["data"])
    data.setdefault("id", line.get("id"))
    if entity == "issue" and line.get("version") is not None:
        data.setdefault("version", line["version"])
    applier.apply({"entity": entity, "entity_id": line.get("id") or data.get("id"),
                   "project": line.get("project"), "op": "create", "new": data,
                   "version": line.get("version")})  # fmt: skip


async def fill_from_snapshot(
    client: SyncClient, path: Path, org_id: str, client_id: str, info: Mapping[str, Any],
    user_id: str,
) -> str:  # fmt: skip
    """Every snapshot page into the data directory at `path`; returns the cursor to pull from."""
    data = Data.open(path, org_id)
    cursor: str | None = None
    roles = {p["id"]: p.get("role") for p in info.get("projects", [])}
    try:
        loading(data.tenant)
        with data.transaction() as applier:
            applier.start_bulk()
            pages: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(maxsize=4)
            reader = asyncio.create_task(_read_pages(client.snapshot(client_id), pages))
            try:
                while (page := await pages.get()) is not None:
                    for line in page:
                        if "reset" in line:
                            raise Conflict(
                                "the server's history changed while cloning; clone again"
                            )
                        if line.get("cursor"):
                            cursor = str(line["cursor"])
                    # off the event loop, while the next page is read
                    await asyncio.to_thread(_apply_lines, applier, page)
                await reader
            finally:
                reader.cancel()
            for project_id, role in roles.items():  # my own role, for offline permission checks
                if role and data.tenant.execute("SELECT 1 FROM projects WHERE id = ?",
                                                (project_id,)).fetchone():  # fmt: skip
                    data.tenant.execute(  # the snapshot's own member row wins
                        "INSERT OR IGNORE INTO project_members (project_id, user_id, role,"
                        " created_at) VALUES (?, ?, ?, ?)", (project_id, user_id, role, now_iso()),
                    )  # fmt: skip
            applier.finish_bulk()
            data.tenant.execute(
                "UPDATE projects SET next_number = coalesce((SELECT max(number) + 1 FROM issues"
                " WHERE issues.project_id = projects.id AND number < 900000000000000), 1)"
            )
        loaded(data.tenant)
    finally:
        data.close()
    if cursor is None:
        raise Conflict("the snapshot ended without a cursor")
    return cursor


async def _read_pages(
    lines: AsyncIterator[dict[str, Any]], pages: asyncio.Queue[list[dict[str, Any]] | None]
) -> None:
    page: list[dict[str, Any]] = []
    try:
        async for line in lines:
            page.append(line)
            if "next_page_token" in line or "reset" in line or len(page) >= 1000:
                await pages.put(page)
                page = []
        if page:
            await pages.put(page)
    finally:
        await pages.put(None)


def _apply_lines(applier: Applier, lines: list[dict[str, Any]]) -> None:
    for line in lines:
        apply_snapshot_line(applier, line)


async def catch_up(client: SyncClient, path: Path, org_id: str, client_id: str, cursor: str) -> str:
    """Pull from the snapshot's cursor to the head into the data directory at `path`."""
    while True:
        page = await client.pull(client_id, cursor)
        if page.get("reset"):
            raise Conflict("the server's history changed while cloning; clone again")
        items = page.get("items") or []
        if items:
            data = Data.open(path, org_id)
            try:
                with data.transaction() as applier:
                    applier.apply_all(items)
            finally:
                data.close()
        cursor = str(page["cursor"])
        if not page.get("has_more"):
            return cursor


async def clone(
    credentials: Credentials, org: str, project: str | None, *, make_active: bool = True
) -> tuple[Path, int]:
    """A new replica of `org` (one project, or every project I may read); returns its
    directory and how many issues it holds. An existing replica there is replaced only
    once the new one is complete (its pending mutations move over)."""
    from tracker.replica.client import SyncClient

    directory = replica_dir(credentials.url, org)
    tmp = directory.with_name(f".{directory.name}.clone-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    for stale in directory.parent.glob(f".{directory.name}.clone-*"):
        shutil.rmtree(stale, ignore_errors=True)  # a clone killed earlier
    tmp.mkdir(parents=True, mode=0o700)
    try:
        async with SyncClient(credentials, org) as client:
            info = await client.info()
            scope = [project.upper()] if project else ["*"]
            registered = await client.register(scope, _device())
            people = await client.members()
            org_id = await _org_id(client, org)
            make_data_dir(tmp / "base", {"id": org_id, "slug": org}, people)
            cursor = await fill_from_snapshot(client, tmp / "base", org_id,
                                              registered["client_id"], info,
                                              credentials.user_id)  # fmt: skip
            cursor = await catch_up(client, tmp / "base", org_id, registered["client_id"], cursor)
        journal = Journal(tmp / "replica.db")
        journal.set(
            server=credentials.url, org=org, org_id=org_id, user_id=credentials.user_id,
            email=credentials.email, client_id=registered["client_id"], cursor=cursor,
            epoch=cursor.rpartition(".")[0], scope=",".join(scope), project=project or "",
            last_mutation_id="0", view_local="0", cloned_at=now_iso(), last_sync=now_iso(),
            snapshot_format=SNAPSHOT_FORMAT,
        )  # fmt: skip
        journal.close()
        copy_closed_data_dir(tmp / "base", tmp / "view", org_id)
        with closing(connect(tmp / "base" / org_id / TENANT_DB)) as conn:
            count = int(conn.execute("SELECT count(*) FROM issues").fetchone()[0])
        _move_pending(directory, tmp)
        swap_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if make_active:
        set_active(directory)
    return directory, count


def _move_pending(old: Path, new: Path) -> None:
    """Re-cloning over an existing replica keeps what was typed and not yet answered, and
    rebuilds the new view with it."""
    if not (old / "replica.db").is_file():
        return
    uploads.carry_over(old, new)  # queued files move too (copied: a failed clone keeps them)
    previous = Journal(old / "replica.db")
    fresh = Journal(new / "replica.db")
    try:
        for m in previous.pending():
            fresh.record(m.name, m.args, m.label, m.v)
        for row in previous.rejected():
            fresh.conn.execute(
                "INSERT INTO rejected_mutations (mutation_id, name, v, args, at, label, problem,"
                " rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (row["mutation_id"], row["name"], row["v"], _json(row["args"]), row["at"],
                 row["label"], _json(row["problem"]), row["rejected_at"]),
            )  # fmt: skip
        for key, issue_id, provisional in previous.conn.execute("SELECT * FROM issue_keys"):
            fresh.remember_key(key, issue_id, bool(provisional))
        drafts.copy(previous.conn, fresh.conn)
    finally:
        previous.close()
        fresh.close()
    if Journal(new / "replica.db").pending_count():
        replica = Replica(new)
        try:
            replica.rebuild_view()
        finally:
            replica.close()


def _json(value: Any) -> str:
    return json.dumps(value)


async def _org_id(client: SyncClient, org: str) -> str:
    body = await client.request("GET", f"/orgs/{org}", "org")
    return str(body["id"])


def new_entity_id() -> str:
    return new_id()
