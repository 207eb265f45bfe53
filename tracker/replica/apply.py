"""Apply change rows (and snapshot images) to a tenant-shaped database.

One applier serves three writers: a snapshot (each entity is applied as a
`create` of its post-image), a pull (the server's change rows in seq order) and
the local replay of pending mutations (tracker.replica.mutations turns each into
the change rows the server would write). Every change row carries absolute
values (post-images for create/restore, `new` for an update), so applying rows
in seq order over any older state ends in the server's state.

The issue's change rows speak the API's shape (status by stage name, parent by
key, tags by name, custom fields by name); they are mapped back to columns here
with the replica's own stage/tag/field rows. The search index is kept with the
same storage functions the server uses (tracker.storage.search_index).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from fractional_indexing import generate_key_between

from tracker.storage.search_index import backfill_cjk, index_issue, unindex_issue

#: Row-shaped entities: entity -> (table, key columns). Their create/restore `new` is the
#: table row; an update names a column; a delete removes the row.
ROW_TABLES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "project": ("projects", ("id",)),
    "stage": ("stages", ("id",)),
    "sprint": ("sprints", ("id",)),
    "tag": ("tags", ("id",)),
    "custom_field": ("custom_fields", ("id",)),
    "relation": ("relations", ("id",)),
    "time_entry": ("time_entries", ("id",)),
    "attachment": ("attachments", ("id",)),
    "project_member": ("project_members", ("project_id", "user_id")),
    "transition_rule": ("transition_rules", ("project_id", "from_stage_id", "to_stage_id")),
}
#: Entities a replica does not keep (operational records of the server).
IGNORED = frozenset({"webhook", "script", "issue_watcher", "issue_draft", "saved_search"})
#: Tables a snapshot fills in bulk: their secondary indexes are dropped for the load and
#: built once after it from their own SQL (docs/offline.md, "Figures"), as a restore would.
BULK_TABLES = ("issues", "comments", "issue_tags", "issue_assignees")
#: Issue fields stored in a column of the same name.
ISSUE_COLUMNS = frozenset(
    {"title", "description", "type", "priority", "sprint_id", "due_date", "estimate", "rank",
     "backlog_rank", "resolved_at", "time_spent", "comment_count", "created_at", "updated_at",
     "reporter", "deleted_at"}
)  # fmt: skip


@cache
def _columns(conn_id: int, table: str, conn: sqlite3.Connection) -> frozenset[str]:
    return frozenset(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))


def columns(conn: sqlite3.Connection, table: str) -> frozenset[str]:
    return _columns(id(conn), table, conn)


class Applier:
    """Applies changes to one tenant connection (and the user directory of its system DB).

    The caller owns the transaction; nothing here commits."""

    def __init__(self, tenant: sqlite3.Connection, system: sqlite3.Connection | None = None,
                 keep_log: bool = True, bulk: bool = False) -> None:  # fmt: skip
        """`bulk` (a snapshot into an empty base): the search index and the derived counts
        are built once by `finish_bulk`, not per row."""
        self.tenant = tenant
        self.bulk = bulk
        self.system = system
        self.keep_log = keep_log
        self._stages: dict[tuple[str, str], str] = {}
        self._fields: dict[tuple[str, str], str | None] = {}  # (project, name) -> field id
        self._project_keys: dict[str, str] = {}
        self._ranks: dict[str, str] = {}
        self._sql: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
        self.touched_issues: set[str] = set()
        self._dropped: list[tuple[str, str]] = []  # (name, CREATE INDEX sql) during a bulk load
        self._numbers: dict[tuple[str, int], str] = {}  # (project, number) -> id, bulk only
        self._parents: list[tuple[str, str, str]] = []  # (issue, project, parent key), bulk only

    # --- entry points -------------------------------------------------------------------

    def apply(self, change: Mapping[str, Any]) -> None:
        entity, op = change["entity"], change["op"]
        if self.keep_log and change.get("seq") is not None:
            self._log(change)
        if entity in IGNORED:
            return
        if entity == "issue":
            self._issue(change, op)
        elif entity == "comment":
            self._comment(change, op)
        elif entity in ("issue_tag", "issue_assignee"):
            self._link(change, entity, op)
        elif entity in ("user", "org_member", "org"):
            self._directory(change, entity, op)
        elif entity in ROW_TABLES:
            self._row(change, entity, op)

    def apply_all(self, changes: Iterable[Mapping[str, Any]]) -> int:
        count = 0
        for change in changes:
            self.apply(change)
            count += 1
        return count

    # --- the change log itself (history offline) ----------------------------------------

    def _log(self, c: Mapping[str, Any]) -> None:
        meta = c.get("meta")
        self.tenant.execute(
            "INSERT OR REPLACE INTO changes (seq, id, at, actor, origin, entity, entity_id,"
            " project, op, field, old, new, batch, client_id, mutation_id, version, meta)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (c["seq"], c.get("id") or f"seq-{c['seq']}", c.get("at") or "", c.get("actor"),
             c.get("origin") or "api", c["entity"], c["entity_id"], c.get("project"),
             c["op"] if c["op"] != "purge" else "delete", c.get("field"), _js(c.get("old")),
             _js(c.get("new")), c.get("batch") or "", c.get("client_id"), c.get("mutation_id"),
             c.get("version"), _js(meta)),
        )  # fmt: skip
        issue = (meta or {}).get("issue") if isinstance(meta, dict) else None
        if issue is None and c["entity"] == "issue":
            issue = c["entity_id"]
        if issue:
            self.tenant.execute(
                "INSERT OR IGNORE INTO issue_changes (issue_id, seq) VALUES (?, ?)",
                (issue, c["seq"]),
            )

    # --- issues -------------------------------------------------------------------------

    def _issue(self, c: Mapping[str, Any], op: str) -> None:
        issue_id = c["entity_id"]
        self.touched_issues.add(issue_id)
        if op in ("create", "restore", "move"):
            self.put_issue(c["new"], c.get("project") or c["new"].get("project_id"), c)
        elif op == "update":
            self._issue_field(issue_id, c)
        elif op == "delete":
            deleted = (c.get("new") or {}).get("deleted_at") or c.get("at")
            self._set_issue(issue_id, {"deleted_at": deleted}, c)
        elif op == "purge":
            self.drop_issue(issue_id)

    def put_issue(
        self, image: Mapping[str, Any], project_id: str, c: Mapping[str, Any] | None = None
    ) -> None:
        """Insert or replace an issue from its API image, keeping its row id (search index)."""
        conn = self.tenant
        stage_id = image.get("stage_id") or self.stage_id(project_id, image.get("status"))
        existing = None  # a bulk load fills an empty base: each issue comes once
        if not self.bulk:
            existing = conn.execute(
                "SELECT row_id, rank FROM issues WHERE id = ?", (image["id"],)
            ).fetchone()
        rank = image.get("rank") or (existing["rank"] if existing else None)
        if rank is None:  # the API shape has no rank: new cards go to the column's end
            rank = self._next_rank(project_id, stage_id)
        row = {
            "id": image["id"], "project_id": project_id, "number": image["number"],
            "title": image["title"], "description": image.get("description") or "",
            "type": image.get("type") or "task", "priority": image.get("priority") or "normal",
            "stage_id": stage_id, "rank": rank, "backlog_rank": image.get("backlog_rank"),
            "reporter": image.get("reporter") or "", "sprint_id": image.get("sprint_id"),
            "parent_id": image.get("parent_id") or self._parent_id(image, project_id),
            "due_date": image.get("due_date"), "estimate": image.get("estimate"),
            "custom_fields": json.dumps(self.fields_by_id(project_id, image["custom_fields"]))
                             if image.get("custom_fields") else "{}",
            "time_spent": image.get("time_spent") or 0,
            "comment_count": image.get("comment_count") or 0,
            "created_at": image.get("created_at") or (c or {}).get("at") or "",
            "updated_at": image.get("updated_at") or (c or {}).get("at") or "",
            "resolved_at": image.get("resolved_at"), "deleted_at": image.get("deleted_at"),
            "version": image.get("version") or (c or {}).get("version") or 1,
        }  # fmt: skip
        names = list(row)
        if existing is not None and not self.bulk:
            unindex_issue(conn, existing["row_id"])
            sets = ", ".join(f"{n} = :{n}" for n in names if n != "id")
            conn.execute(f"UPDATE issues SET {sets} WHERE id = :id", row)
            row_id = existing["row_id"]
        else:
            cur = conn.execute(self._insert_sql("issues", tuple(names), ()), row)
            row_id = cur.lastrowid
            if self.bulk:
                self._numbers[(project_id, int(row["number"]))] = str(row["id"])
        if "tags" in image:
            if existing is not None:
                conn.execute("DELETE FROM issue_tags WHERE issue_id = ?", (image["id"],))
            for tag in image["tags"] or []:
                tag_id = self.tag_id(project_id, tag)
                if tag_id is not None:
                    conn.execute(
                        "INSERT OR IGNORE INTO issue_tags (issue_id, tag_id) VALUES (?, ?)",
                        (image["id"], tag_id),
                    )
        if "assignees" in image:
            if existing is not None:
                conn.execute("DELETE FROM issue_assignees WHERE issue_id = ?", (image["id"],))
            for user_id in image["assignees"] or []:
                conn.execute(
                    "INSERT OR IGNORE INTO issue_assignees (issue_id, user_id) VALUES (?, ?)",
                    (image["id"], user_id),
                )
        if self.bulk:
            return
        conn.execute(
            "UPDATE issues SET comment_count = (SELECT count(*) FROM comments c WHERE"
            " c.issue_id = issues.id), time_spent = (SELECT coalesce(sum(seconds_spent), 0)"
            " FROM time_entries t WHERE t.issue_id = issues.id) WHERE row_id = ?",
            (row_id,),
        )
        index_issue(conn, int(row_id or 0))

    def start_bulk(self) -> None:
        """Before a snapshot fills an empty base: drop the secondary indexes of the big
        tables (each row then costs one b-tree insert, not a dozen); `finish_bulk` builds
        them again from their own SQL, so the schema ends as migrated."""
        self.bulk = True
        self._dropped = [
            (str(name), str(sql))
            for name, sql in self.tenant.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                f" AND tbl_name IN ({', '.join('?' for _ in BULK_TABLES)}) ORDER BY rowid",
                BULK_TABLES,
            )
        ]
        for name, _ in self._dropped:
            self.tenant.execute(f'DROP INDEX "{name}"')

    def _parent_id(self, image: Mapping[str, Any], project_id: str) -> str | None:
        key = image.get("parent")
        if not self.bulk or not key:
            return self.issue_id_of_key(project_id, key)
        _, _, number = str(key).rpartition("-")
        found = self._numbers.get((project_id, int(number))) if number.isdigit() else None
        if found is None:  # the parent comes later in the snapshot: set at finish_bulk
            self._parents.append((str(image["id"]), project_id, str(key)))
        return found

    def finish_bulk(self) -> None:
        """After a bulk load: the dropped indexes built again, derived counts in one pass
        each, then the search index (and its CJK segments) rebuilt from the rows, as the
        migration that added CJK does."""
        for _, sql in self._dropped:
            self.tenant.execute(sql)
        self._dropped = []
        for issue_id, project_id, key in self._parents:
            self.tenant.execute("UPDATE issues SET parent_id = ? WHERE id = ?",
                                (self.issue_id_of_key(project_id, key), issue_id))  # fmt: skip
        self._parents, self._numbers = [], {}
        self.tenant.execute(
            "UPDATE issues SET comment_count = (SELECT count(*) FROM comments c WHERE"
            " c.issue_id = issues.id), time_spent = (SELECT coalesce(sum(seconds_spent), 0)"
            " FROM time_entries t WHERE t.issue_id = issues.id)"
        )
        backfill_cjk(self.tenant)
        self.bulk = False

    def _next_rank(self, project_id: str, stage_id: str) -> str:
        last = self._ranks.get(stage_id)
        if last is None:
            last = self.tenant.execute(
                "SELECT max(rank) FROM issues WHERE project_id = ? AND stage_id = ?"
                " AND deleted_at IS NULL", (project_id, stage_id),
            ).fetchone()[0]  # fmt: skip
        rank = generate_key_between(last, None)
        self._ranks[stage_id] = rank
        return str(rank)

    def _issue_field(self, issue_id: str, c: Mapping[str, Any]) -> None:
        field, new = c.get("field"), c.get("new")
        row = self.tenant.execute(
            "SELECT project_id, custom_fields FROM issues WHERE id = ?", (issue_id,)
        ).fetchone()
        if row is None or field is None:
            return
        project_id = row["project_id"]
        values: dict[str, Any]
        if field in ISSUE_COLUMNS:
            values = {field: new}
        elif field == "status":
            values = {"stage_id": self.stage_id(project_id, new)}
        elif field == "stage_id":
            values = {"stage_id": new}
        elif field == "parent":
            values = {"parent_id": self.issue_id_of_key(project_id, new)}
        elif field == "parent_id":
            values = {"parent_id": new}
        else:  # a custom field, by name (the server logs `custom_fields.<name>`)
            field_id = self._field_id(project_id, field.removeprefix("custom_fields."))
            if field_id is None:
                return
            stored = json.loads(row["custom_fields"])
            if new is None:
                stored.pop(field_id, None)
            else:
                stored[field_id] = new
            values = {"custom_fields": json.dumps(stored)}
        self._set_issue(issue_id, values, c)

    def _set_issue(self, issue_id: str, values: dict[str, Any], c: Mapping[str, Any]) -> None:
        conn = self.tenant
        row = conn.execute("SELECT row_id FROM issues WHERE id = ?", (issue_id,)).fetchone()
        if row is None:
            return
        text = "title" in values or "description" in values
        if text:
            unindex_issue(conn, row["row_id"])
        if c.get("at"):
            values = {"updated_at": c["at"], **values}
        if c.get("version") is not None:
            values = {**values, "version": c["version"]}
        sets = ", ".join(f"{k} = :{k}" for k in values)
        conn.execute(f"UPDATE issues SET {sets} WHERE id = :_id", {**values, "_id": issue_id})
        if text:
            index_issue(conn, row["row_id"])

    def drop_issue(self, issue_id: str) -> None:
        """Remove an issue and everything hanging off it (out of scope, purged)."""
        conn = self.tenant
        row = conn.execute("SELECT row_id FROM issues WHERE id = ?", (issue_id,)).fetchone()
        if row is None:
            return
        unindex_issue(conn, row["row_id"])
        for table, column in (("comments", "issue_id"), ("issue_tags", "issue_id"),
                              ("issue_assignees", "issue_id"), ("time_entries", "issue_id"),
                              ("relations", "source_id"), ("relations", "target_id"),
                              ("attachments", "issue_id"), ("issue_cjk", None)):  # fmt: skip
            if column is None:
                conn.execute("DELETE FROM issue_cjk WHERE row_id = ?", (row["row_id"],))
            else:
                conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (issue_id,))
        conn.execute("UPDATE issues SET parent_id = NULL WHERE parent_id = ?", (issue_id,))
        conn.execute("DELETE FROM issues WHERE id = ?", (issue_id,))

    # --- comments and links -------------------------------------------------------------

    def _comment(self, c: Mapping[str, Any], op: str) -> None:
        conn = self.tenant
        if op in ("create", "restore"):
            image = dict(c["new"])
            if self.bulk:  # the snapshot sends comments of the issues it sent only
                self._upsert("comments", ("id",), image)
                return
            issue = self._issue_row(image["issue_id"])
            if issue is None:
                return
            unindex_issue(conn, issue["row_id"])
            self._upsert("comments", ("id",), image)
            self._recount(issue["row_id"], image.get("created_at") or c.get("at"))
            index_issue(conn, issue["row_id"])
            self.touched_issues.add(image["issue_id"])
            return
        row = conn.execute(
            "SELECT issue_id FROM comments WHERE id = ?", (c["entity_id"],)
        ).fetchone()
        if row is None:
            return
        issue = self._issue_row(row["issue_id"])
        if issue is None:
            return
        self.touched_issues.add(row["issue_id"])
        unindex_issue(conn, issue["row_id"])
        if op == "update" and c.get("field") in ("body", "updated_at"):
            conn.execute(
                f"UPDATE comments SET {c['field']} = ?, updated_at = coalesce(?, updated_at),"
                " version = coalesce(?, version) WHERE id = ?",
                (c.get("new"), c.get("at"), c.get("version"), c["entity_id"]),
            )
        elif op in ("delete", "purge"):
            conn.execute("DELETE FROM comments WHERE id = ?", (c["entity_id"],))
            self._recount(issue["row_id"], None)
        index_issue(conn, issue["row_id"])

    def _recount(self, row_id: int, at: str | None) -> None:
        """comment_count is derived: counted, never incremented (a snapshot may already
        hold a comment whose create row is replayed after it)."""
        self.tenant.execute(
            "UPDATE issues SET comment_count = (SELECT count(*) FROM comments c"
            " WHERE c.issue_id = issues.id), updated_at = max(updated_at, coalesce(?, ''))"
            " WHERE row_id = ?",
            (at, row_id),
        )

    def _link(self, c: Mapping[str, Any], entity: str, op: str) -> None:
        link = c.get("new") if op == "create" else c.get("old")
        if not isinstance(link, dict):
            issue_id, _, other = str(c["entity_id"]).partition(":")
            link = {"issue_id": issue_id, ("tag_id" if entity == "issue_tag" else "user_id"): other}
        table, column = (
            ("issue_tags", "tag_id") if entity == "issue_tag" else ("issue_assignees", "user_id")
        )
        self.touched_issues.add(link["issue_id"])
        if op == "create":
            self.tenant.execute(
                f"INSERT OR IGNORE INTO {table} (issue_id, {column}) VALUES (?, ?)",
                (link["issue_id"], link[column]),
            )
        else:
            self.tenant.execute(
                f"DELETE FROM {table} WHERE issue_id = ? AND {column} = ?",
                (link["issue_id"], link[column]),
            )
        if c.get("version") is not None:
            self.tenant.execute("UPDATE issues SET version = ? WHERE id = ? AND version < ?",
                                (c["version"], link["issue_id"], c["version"]))  # fmt: skip

    # --- row-shaped entities -------------------------------------------------------------

    def _row(self, c: Mapping[str, Any], entity: str, op: str) -> None:
        table, keys = ROW_TABLES[entity]
        if entity == "stage":
            self._stages.clear()
        if entity == "custom_field":
            self._fields.clear()
        if entity == "project":
            self._project_keys.clear()
        if op in ("create", "restore", "move"):
            image = dict(c["new"])
            if entity == "project_member":
                image.setdefault("user_id", c["entity_id"])
                image.setdefault("project_id", c.get("project"))
                if image.get("email") and self.system is not None:  # a snapshot line
                    put_user(self.system, {**image, "id": image["user_id"]})
            elif "project_id" in columns(self.tenant, table) and "project_id" not in image:
                image["project_id"] = c.get("project")
            if entity == "project":
                image["deleted_at"] = None
            self._upsert(table, keys, image)
            if entity == "time_entry":
                self._time_spent(image.get("issue_id"))
            return
        where, args = self._where(c, entity, keys)
        if where is None:
            return
        if op == "update":
            field = c.get("field")
            if field and field in columns(self.tenant, table):
                new = c.get("new")
                if isinstance(new, dict | list):
                    new = json.dumps(new)
                self.tenant.execute(f"UPDATE {table} SET {field} = ? WHERE {where}", (new, *args))
        elif op in ("delete", "purge"):
            if entity == "project":
                self.tenant.execute(f"UPDATE projects SET deleted_at = ? WHERE {where}",
                                    (c.get("at"), *args))  # fmt: skip
                return
            issue = None
            if entity == "time_entry":
                found = self.tenant.execute(f"SELECT issue_id FROM {table} WHERE {where}", args)
                issue = (found.fetchone() or [None])[0]
            self.tenant.execute(f"DELETE FROM {table} WHERE {where}", args)
            if issue:
                self._time_spent(issue)

    def _where(
        self, c: Mapping[str, Any], entity: str, keys: tuple[str, ...]
    ) -> tuple[str | None, tuple[Any, ...]]:
        if keys == ("id",):
            return "id = ?", (c["entity_id"],)
        if entity == "project_member":
            return "project_id = ? AND user_id = ?", (c.get("project"), c["entity_id"])
        image = c.get("old") or c.get("new")
        if not isinstance(image, dict):
            return None, ()
        return " AND ".join(f"{k} = ?" for k in keys), tuple(image.get(k) for k in keys)

    def _time_spent(self, issue_id: str | None) -> None:
        if issue_id:
            self.tenant.execute(
                "UPDATE issues SET time_spent = (SELECT coalesce(sum(seconds_spent), 0)"
                " FROM time_entries WHERE issue_id = ?) WHERE id = ?",
                (issue_id, issue_id),
            )

    def _upsert(self, table: str, keys: tuple[str, ...], image: Mapping[str, Any]) -> None:
        known = columns(self.tenant, table)
        values = {k: _sql(v) for k, v in image.items() if k in known}
        if table in ("issues", "comments") and "row_id" in values:
            del values["row_id"]
        self.tenant.execute(self._insert_sql(table, tuple(values), keys), values)

    def _insert_sql(self, table: str, names: tuple[str, ...], keys: tuple[str, ...]) -> str:
        """INSERT (an upsert on `keys`), built once per table and column set."""
        found = self._sql.get((table, names, keys))
        if found is None:
            marks = ", ".join(f":{n}" for n in names)
            found = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"
            if keys:
                updates = ", ".join(f"{n} = excluded.{n}" for n in names if n not in keys)
                found += f" ON CONFLICT ({', '.join(keys)}) DO " + (
                    f"UPDATE SET {updates}" if updates else "NOTHING"
                )
            self._sql[(table, names, keys)] = found
        return found

    # --- the user directory (system DB of the data directory) ----------------------------

    def _directory(self, c: Mapping[str, Any], entity: str, op: str) -> None:
        if self.system is None:
            return
        new = c.get("new")
        image: dict[str, Any] = new if isinstance(new, dict) else {}
        if entity == "user" and op in ("create", "restore", "update"):
            put_user(self.system, {"id": c["entity_id"], **image})
        elif entity == "org_member" and op in ("create", "restore"):
            org_id = image.get("org_id") or _org_id(self.system)
            self.system.execute(
                "INSERT OR REPLACE INTO org_members (org_id, user_id, role, created_at)"
                " VALUES (?, ?, ?, ?)",
                (org_id, image.get("user_id") or c["entity_id"], image.get("role") or "member",
                 image.get("created_at") or c.get("at") or ""),
            )  # fmt: skip
        elif entity == "org_member" and op == "update" and c.get("field") == "role":
            self.system.execute("UPDATE org_members SET role = ? WHERE user_id = ?",
                                (c.get("new"), c["entity_id"]))  # fmt: skip
        elif entity == "org_member" and op == "delete":
            self.system.execute("DELETE FROM org_members WHERE user_id = ?", (c["entity_id"],))

    # --- look-ups -----------------------------------------------------------------------

    def stage_id(self, project_id: str, name: str | None) -> str:
        key = (project_id, (name or "").lower())
        found = self._stages.get(key)
        if found is not None:
            return found
        if name is None:
            row = self.tenant.execute(
                "SELECT id FROM stages WHERE project_id = ? AND category = 'todo'"
                " ORDER BY position LIMIT 1", (project_id,),
            ).fetchone()  # fmt: skip
        else:
            row = self.tenant.execute(
                "SELECT id FROM stages WHERE project_id = ? AND name = ? COLLATE NOCASE",
                (project_id, name),
            ).fetchone()
        if row is None:  # an unknown stage (renamed meanwhile): keep the issue visible
            row = self.tenant.execute(
                "SELECT id FROM stages WHERE project_id = ? ORDER BY position LIMIT 1",
                (project_id,),
            ).fetchone()
        if row is None:
            raise LookupError(f"project {project_id} has no stages in the replica")
        self._stages[key] = row[0]
        return str(row[0])

    def tag_id(self, project_id: str, name: str) -> str | None:
        row = self.tenant.execute(
            "SELECT id FROM tags WHERE project_id = ? AND (name = ? COLLATE NOCASE OR id = ?)",
            (project_id, name, name),
        ).fetchone()
        return None if row is None else str(row[0])

    def _field_id(self, project_id: str, name: str) -> str | None:
        key = (project_id, name.lower())
        if key in self._fields:  # a clone looks up every value of every issue
            return self._fields[key]
        row = self.tenant.execute(
            "SELECT id FROM custom_fields WHERE project_id = ? AND (name = ? COLLATE NOCASE"
            " OR id = ?)", (project_id, name, name),
        ).fetchone()  # fmt: skip
        self._fields[key] = found = None if row is None else str(row[0])
        return found

    def fields_by_id(self, project_id: str, by_name: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in by_name.items():
            field_id = self._field_id(project_id, name)
            if field_id is not None and value is not None:
                out[field_id] = value
        return out

    def issue_id_of_key(self, project_id: str, key: str | None) -> str | None:
        if not key:
            return None
        _, _, number = str(key).rpartition("-")
        if not number.isdigit():
            return None
        row = self.tenant.execute(
            "SELECT id FROM issues WHERE project_id = ? AND number = ?", (project_id, int(number))
        ).fetchone()
        return None if row is None else str(row[0])

    def _issue_row(self, issue_id: str) -> sqlite3.Row | None:
        return self.tenant.execute(
            "SELECT row_id, project_id FROM issues WHERE id = ?", (issue_id,)
        ).fetchone()

    # --- scope -----------------------------------------------------------------------------

    def drop_project(self, project_id: str) -> None:
        """A project the person lost (or left the scope): its data leaves the replica."""
        conn = self.tenant
        for (issue_id,) in conn.execute(
            "SELECT id FROM issues WHERE project_id = ?", (project_id,)
        ).fetchall():
            self.drop_issue(issue_id)
        for table in ("tags", "custom_fields", "sprints", "transition_rules", "project_members",
                      "attachments"):  # fmt: skip
            conn.execute(f"DELETE FROM {table} WHERE project_id = ?", (project_id,))
        conn.execute("DELETE FROM stages WHERE project_id = ?", (project_id,))
        conn.execute("DELETE FROM projects WHERE id = ?", (project_id,))
        self._stages.clear()
        self._fields.clear()


def put_user(system: sqlite3.Connection, image: Mapping[str, Any]) -> None:
    """A directory entry: id, email, display name (no password: a replica logs no one in)."""
    system.execute(
        "INSERT INTO users (id, email, display_name, password_hash, created_at, updated_at)"
        " VALUES (?, ?, ?, '!', ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " email = excluded.email, display_name = excluded.display_name",
        (image["id"], image.get("email") or f"{image['id']}@unknown",
         image.get("display_name") or image.get("name") or "", image.get("created_at") or "",
         image.get("updated_at") or image.get("created_at") or ""),
    )  # fmt: skip


def _org_id(system: sqlite3.Connection) -> str:
    return str(system.execute("SELECT id FROM orgs LIMIT 1").fetchone()[0])


def _js(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _sql(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value
