"""Text drafts: an offline text edit the server could not merge (`kept_both`).

The server kept its text; the person's text is kept here, in replica.db's
`issue_drafts` (a replica schema step, tracker/replica/store.py), with the base
it was written over, the server's text at the time and a conflict-marked
three-way merge. `rhythm issue resolve` records a new `issue.set_description`
(or `comment.edit`) whose base is the server's text, so a further edit made
meanwhile is merged again rather than overwritten; the draft goes when the
server answers that mutation (docs/offline.md, "Text drafts").
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from tracker.domain.ids import now_iso
from tracker.domain.text_merge import marked

#: The mutations whose `kept_both` answer becomes a draft, and their text argument.
TEXT_MUTATIONS = {"issue.set_description": "text", "comment.edit": "body"}


@dataclass(frozen=True)
class Draft:
    issue_id: str
    field: str  # "description" or "comment:<comment id>"
    key: str  # the issue's key when the draft was made (WEB-42)
    base: str  # what the person started from
    theirs: str  # the server's text, kept
    mine: str  # what the person wrote
    merged: str  # conflict-marked three-way merge, to finish by hand
    created_at: str
    resolving: str | None = None  # hash of the pending mutation that resolves it

    @property
    def words(self) -> str:
        """`WEB-42 description` / `WEB-42 comment 0193…`."""
        if self.field.startswith("comment:"):
            return f"{self.key} comment {self.field.partition(':')[2]}"
        return f"{self.key} {self.field}"

    @property
    def command(self) -> str:
        more = f" --field {self.field}" if self.field != "description" else ""
        return f"rhythm issue resolve {self.key}{more}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "command": self.command}


def field_of(name: str, args: dict[str, Any]) -> str:
    return "description" if name == "issue.set_description" else f"comment:{args['id']}"


def save_in(
    conn: sqlite3.Connection, issue_id: str, key: str, name: str, args: dict[str, Any],
    draft: dict[str, Any],
) -> Draft:  # fmt: skip
    """Keep one draft (a newer one for the same text replaces the older: it was written
    over the older's text, so it holds it)."""
    base = str(draft.get("base") or "")
    theirs = str(draft.get("current") or "")
    mine = str(draft.get("text") if draft.get("text") is not None else args[TEXT_MUTATIONS[name]])
    found = Draft(issue_id, field_of(name, args), key, base, theirs, mine,
                  marked(base, theirs, mine), now_iso())  # fmt: skip
    conn.execute(
        "INSERT OR REPLACE INTO issue_drafts (issue_id, field, issue_key, base, theirs, mine,"
        " merged, created_at, resolving) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        (found.issue_id, found.field, found.key, found.base, found.theirs, found.mine,
         found.merged, found.created_at),
    )  # fmt: skip
    return found


def settle_in(conn: sqlite3.Connection, digest: str, status: str | None) -> None:
    """The server answered a resolving mutation: unless it overlapped again (a new draft
    replaces this one), the draft is done (a rejection keeps the text in `rejected`)."""
    if status != "kept_both":
        conn.execute("DELETE FROM issue_drafts WHERE resolving = ?", (digest,))


def listed(conn: sqlite3.Connection, issue_id: str | None = None) -> list[Draft]:
    sql = ("SELECT issue_id, field, issue_key, base, theirs, mine, merged, created_at, resolving"
           " FROM issue_drafts")  # fmt: skip
    rows = (
        conn.execute(sql + " WHERE issue_id = ? ORDER BY created_at", (issue_id,))
        if issue_id
        else conn.execute(sql + " ORDER BY created_at")
    ).fetchall()
    return [Draft(*row) for row in rows]


def mark_resolving(conn: sqlite3.Connection, draft: Draft, digest: str) -> None:
    conn.execute("UPDATE issue_drafts SET resolving = ? WHERE issue_id = ? AND field = ?",
                 (digest, draft.issue_id, draft.field))  # fmt: skip


def drop(conn: sqlite3.Connection, draft: Draft) -> None:
    conn.execute("DELETE FROM issue_drafts WHERE issue_id = ? AND field = ?",
                 (draft.issue_id, draft.field))  # fmt: skip


def copy(old: sqlite3.Connection, new: sqlite3.Connection) -> None:
    """Re-cloning keeps the drafts (nothing typed is lost)."""
    for row in old.execute("SELECT * FROM issue_drafts"):
        new.execute(
            "INSERT OR REPLACE INTO issue_drafts (issue_id, field, issue_key, base, theirs,"
            " mine, merged, created_at, resolving) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            tuple(row),
        )
