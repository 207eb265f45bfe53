"""`replica.db`: the replica's meta and its journals, kept apart from base/ and view/.

Rebuilding the view (or re-cloning) replaces whole data directories; nothing a
person typed lives there. What they typed lives here until the server answered
it: `pending_mutations` (in id order, gap-free per client id), then
`acked_mutations` (a 30-day journal) or `rejected_mutations` (kept until
dropped, text intact). `issue_keys` maps every key an issue was ever shown
under (provisional `WEB-~3fa9c` ones too) to its id.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.domain.ids import now_iso
from tracker.errors import Conflict
from tracker.replica import drafts
from tracker.storage.files import try_lock

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_mutations (
    id    INTEGER PRIMARY KEY,          -- the mutation id: 1, 2, 3... per client id
    name  TEXT NOT NULL,
    v     INTEGER NOT NULL,
    args  TEXT NOT NULL,                -- JSON; entities named by UUID only
    at    TEXT NOT NULL,                -- device time, display only
    hash  TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT ''      -- what the person typed, in words (for reports)
);
CREATE TABLE IF NOT EXISTS rejected_mutations (
    n           INTEGER PRIMARY KEY AUTOINCREMENT,
    mutation_id INTEGER,
    name        TEXT NOT NULL,
    v           INTEGER NOT NULL,
    args        TEXT NOT NULL,
    at          TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    problem     TEXT NOT NULL,          -- JSON problem details, as the server sent it
    rejected_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acked_mutations (
    client_id   TEXT NOT NULL,
    mutation_id INTEGER NOT NULL,
    name        TEXT NOT NULL,
    v           INTEGER NOT NULL,
    args        TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    result      TEXT NOT NULL,
    acked_at    TEXT NOT NULL,
    PRIMARY KEY (client_id, mutation_id)
);
CREATE TABLE IF NOT EXISTS issue_keys (
    key         TEXT PRIMARY KEY COLLATE NOCASE,
    issue_id    TEXT NOT NULL,
    provisional INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS issue_keys_issue ON issue_keys(issue_id);
"""

#: The replica's own schema steps, applied in order past `PRAGMA user_version` (the
#: tables above predate the steps and are created IF NOT EXISTS). Never edit a step:
#: append one.
STEPS: tuple[str, ...] = (
    # 1: offline attachments waiting for `rhythm sync` (tracker/replica/uploads.py);
    # `problem` is set (JSON) when the server refused one: kept, listed by --rejected.
    """
    CREATE TABLE IF NOT EXISTS pending_uploads (
        id         TEXT PRIMARY KEY,
        issue_id   TEXT NOT NULL,
        issue_key  TEXT NOT NULL,
        filename   TEXT NOT NULL,
        size       INTEGER NOT NULL,
        sha256     TEXT NOT NULL,
        path       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempted  INTEGER NOT NULL DEFAULT 0,
        problem    TEXT
    );
    """,
    # 2: text drafts (tracker/replica/drafts.py): an overlapping text edit the server
    # answered `kept_both`, kept until `rhythm issue resolve`.
    """
    CREATE TABLE IF NOT EXISTS issue_drafts (
        issue_id   TEXT NOT NULL,
        field      TEXT NOT NULL,
        issue_key  TEXT NOT NULL,
        base       TEXT NOT NULL,
        theirs     TEXT NOT NULL,
        mine       TEXT NOT NULL,
        merged     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        resolving  TEXT,
        PRIMARY KEY (issue_id, field)
    );
    """,
)

ACKED_DAYS = 30


@dataclass(frozen=True)
class Mutation:
    id: int
    name: str
    v: int
    args: dict[str, Any]
    at: str
    label: str

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "v": self.v, "at": self.at, "args": self.args}


def mutation_hash(name: str, v: int, args: dict[str, Any]) -> str:
    canonical = json.dumps({"name": name, "v": v, "args": args}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)  # fmt: skip
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def connect(path: Path) -> sqlite3.Connection:
    """The journal file: WAL, FULL sync (what a person typed must survive a power cut)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    _migrate(conn)
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the steps this file has not seen yet, each with its version bump, atomically."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for number, step in enumerate(STEPS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) < number:
                for statement in filter(str.strip, step.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class Journal:
    """Meta and journals of one replica (one short transaction per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- meta ---------------------------------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def require(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise Conflict(f"the replica has no {key}; clone again")
        return value

    def set(self, **values: Any) -> None:
        with self.transaction() as conn:
            self.set_in(conn, **values)

    @staticmethod
    def set_in(conn: sqlite3.Connection, **values: Any) -> None:
        for key, value in values.items():
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                text = value if isinstance(value, str) else json.dumps(value)
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))

    def meta(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT key, value FROM meta")}

    # --- pending ------------------------------------------------------------------------

    def record(self, name: str, args: dict[str, Any], label: str, v: int = 1) -> Mutation:
        """Append one mutation with the next id (gap-free per client id)."""
        with self.transaction() as conn:
            last = conn.execute("SELECT max(id) FROM pending_mutations").fetchone()[0]
            floor = int(self.get("last_mutation_id") or 0)
            mutation_id = max(last or 0, floor) + 1
            at = now_iso()
            conn.execute(
                "INSERT INTO pending_mutations (id, name, v, args, at, hash, label)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (mutation_id, name, v, json.dumps(args), at, mutation_hash(name, v, args), label),
            )
        return Mutation(mutation_id, name, v, args, at, label)

    def pending(self, limit: int | None = None) -> list[Mutation]:
        sql = "SELECT id, name, v, args, at, label FROM pending_mutations ORDER BY id"
        rows = self.conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        return [Mutation(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def pending_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM pending_mutations").fetchone()[0])

    def settle(
        self, client_id: str, answered: list[tuple[Mutation, dict[str, Any]]],
        where: Mapping[int, tuple[str, str]] | None = None,
    ) -> list[drafts.Draft]:  # fmt: skip
        """Answered mutations leave `pending`: rejected ones to `rejected`, an overlapping
        text edit (`kept_both`) to `issue_drafts` (`where`: mutation id -> issue id and
        key), the rest to `acked`; `last_mutation_id` moves with them, in one transaction.
        Returns the drafts made."""
        now = now_iso()
        made: list[drafts.Draft] = []
        with self.transaction() as conn:
            top = 0
            for mutation, result in answered:
                conn.execute("DELETE FROM pending_mutations WHERE id = ?", (mutation.id,))
                top = max(top, mutation.id)
                status = result.get("status")
                if mutation.name in drafts.TEXT_MUTATIONS:
                    drafts.settle_in(conn, mutation_hash(mutation.name, mutation.v,
                                                         mutation.args), status)  # fmt: skip
                if status == "rejected":
                    self._reject_in(conn, mutation, result.get("problem") or {}, now)
                elif status == "kept_both" and mutation.name in drafts.TEXT_MUTATIONS:
                    # the server kept its text: the person's becomes a draft
                    issue_id, key = (where or {}).get(mutation.id) or ("", mutation.label)
                    draft = result.get("draft") or {}
                    made.append(
                        drafts.save_in(conn, issue_id, key, mutation.name, mutation.args, draft)
                    )
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO acked_mutations (client_id, mutation_id, name, v,"
                        " args, label, result, acked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (client_id, mutation.id, mutation.name, mutation.v,
                         json.dumps(mutation.args), mutation.label, json.dumps(result), now),
                    )  # fmt: skip
            if top:
                current = int(self.get("last_mutation_id") or 0)
                self.set_in(conn, last_mutation_id=str(max(current, top)))
            conn.execute(
                "DELETE FROM acked_mutations WHERE acked_at < strftime('%Y-%m-%dT%H:%M:%fZ',"
                f" 'now', '-{ACKED_DAYS} days')"
            )
        return made

    def reject_locally(self, mutation: Mutation, problem: dict[str, Any]) -> None:
        """A mutation the client itself gives up on (it depends on a rejected create, or
        its project left the scope): kept with its reason, never sent."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM pending_mutations WHERE id = ?", (mutation.id,))
            self._reject_in(conn, mutation, problem, now_iso())

    @staticmethod
    def _reject_in(
        conn: sqlite3.Connection, mutation: Mutation, problem: dict[str, Any], now: str
    ) -> None:
        conn.execute(
            "INSERT INTO rejected_mutations (mutation_id, name, v, args, at, label, problem,"
            " rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (mutation.id, mutation.name, mutation.v, json.dumps(mutation.args), mutation.at,
             mutation.label, json.dumps(problem), now),
        )  # fmt: skip

    def renumber(self, client_id: str, start: int = 1) -> None:
        """Pending keep their order with ids from `start`: 1 under a new client id, or
        right after the last answered one when the client dropped one itself."""
        with self.transaction() as conn:
            rows = conn.execute("SELECT * FROM pending_mutations ORDER BY id").fetchall()
            conn.execute("DELETE FROM pending_mutations")
            for n, row in enumerate(rows, start=start):
                conn.execute(
                    "INSERT INTO pending_mutations (id, name, v, args, at, hash, label)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (n, row["name"], row["v"], row["args"], row["at"], row["hash"], row["label"]),
                )
            self.set_in(conn, client_id=client_id, last_mutation_id=str(start - 1))

    # --- rejected -----------------------------------------------------------------------

    def rejected(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM rejected_mutations ORDER BY n").fetchall()
        return [
            {**dict(r), "args": json.loads(r["args"]), "problem": json.loads(r["problem"])}
            for r in rows
        ]

    def drop_rejected(self, n: int) -> dict[str, Any] | None:
        with self.transaction() as conn:
            row = conn.execute("SELECT * FROM rejected_mutations WHERE n = ?", (n,)).fetchone()
            conn.execute("DELETE FROM rejected_mutations WHERE n = ?", (n,))
        return None if row is None else {**dict(row), "args": json.loads(row["args"])}

    def acked(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM acked_mutations ORDER BY acked_at, mutation_id"
        ).fetchall()
        return [{**dict(r), "args": json.loads(r["args"])} for r in rows]

    # --- keys ---------------------------------------------------------------------------

    def remember_key(self, key: str, issue_id: str, provisional: bool) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO issue_keys (key, issue_id, provisional) VALUES (?, ?, ?)",
            (key, issue_id, int(provisional)),
        )

    def issue_for_key(self, key: str) -> str | None:
        row = self.conn.execute("SELECT issue_id FROM issue_keys WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def provisional_keys(self) -> dict[str, str]:
        """issue id -> its provisional key, for every issue created here."""
        rows = self.conn.execute("SELECT key, issue_id FROM issue_keys WHERE provisional = 1")
        return {r[1]: r[0] for r in rows}


class ReplicaLock:
    """One sync at a time per replica: an flock on `<replica>/lock`, never waited for."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = try_lock(self.path)
        if fd is None:
            raise Conflict("sync in progress (another `rhythm sync` holds this replica)")
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing releases the flock
            self.fd = None

    def __enter__(self) -> ReplicaLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
