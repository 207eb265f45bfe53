"""The fast read path: `rhythm issue list|search` and `rhythm board` on a replica with
sqlite3 alone, no typer.

Start-up, not the query, is what a local read costs: importing typer, pydantic, the
models and `tracker.core` took ~300 ms of a ~400 ms `rhythm issue list` on a
100,000-issue replica, the query a few ms (docs/cli.md, docs/offline.md). This
module answers the common cases with nothing but the standard library,
`tracker.replica.paths` and the storage SQL the services run
(`tracker.storage.issue_pages`, `tracker.storage.search`, `tracker.storage.boards`),
and prints exactly what the typer command prints.

It takes the command only when the answer is sure to be the same; anything else
(another command or option, `--json`, a terminal (rich table), a data directory,
RHYTHM_ORG/PROJECT/AS, stored `rhythm use` defaults, provisional keys, a locked
view, a person without read access, input the models would reject) returns
None and `cli.main` runs as ever, errors included. tests/test_cli_fast.py holds
the output to the typer path's on the same data.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from tracker.domain.issue_values import ISSUE_TYPES, PRIORITIES

#: What `rhythm issue list` prints (cli/issues.py COLUMNS), in order.
COLUMNS = ["key", "status", "priority", "type", "title", "assignees", "updated_at"]
#: Value options taken here (option -> IssueListQuery field); flags below.
_VALUES = {"--status": "status", "--priority": "priority", "--type": "type",
           "--sort": "sort", "--limit": "limit"}  # fmt: skip
_FLAGS = {"--quiet": "quiet", "-q": "quiet"}
_SORTS = {f"{s}-{d}" for s in ("number", "created", "updated", "priority") for d in ("asc", "desc")}
#: File names inside a data directory (tracker.settings; tracker.replica.engine).
_SYSTEM_DB, _TENANT_DB, _LOCK = "_system.db", "tracker.db", ".rhythm.lock"
#: cli/boards.py CARD_WIDTH.
_CARD_WIDTH = 40
_ENV_OFF = ("RHYTHM_DATA_DIR", "RHYTHM_ORG", "RHYTHM_PROJECT", "RHYTHM_AS")


def parse(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """`issue list|search ...` or `board ...` -> (command, {field: value}), or None when
    this path does not take them."""
    if args[:2] == ["issue", "list"]:
        command, rest, found = "issue list", args[2:], {"limit": "50", "quiet": False}
        values, flags, top = _VALUES, _FLAGS, 200
    elif args[:1] == ["board"]:
        command, rest, found = "board", args[1:], {"limit": "20"}
        values, flags, top = {"--limit": "limit"}, {}, 200
    elif args[:2] == ["issue", "search"]:
        command, rest, found = "issue search", args[2:], {"limit": "20"}
        values, flags, top = {"--limit": "limit"}, {}, 200
    else:
        return None
    while rest:
        word = rest.pop(0)
        name, eq, value = word.partition("=")
        if command == "issue search" and "query" not in found and not word.startswith("-"):
            found["query"] = word
        elif name in values:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            found[values[name]] = value
        elif word in flags:
            found[flags[word]] = True
        else:
            return None
    if not found["limit"].isdigit() or not 1 <= int(found["limit"]) <= top:
        return None
    if command == "issue search" and "query" not in found:
        return None
    found["limit"] = int(found["limit"])
    if found.get("sort", "number-desc") not in _SORTS:
        return None
    for name, allowed in (("priority", PRIORITIES), ("type", ISSUE_TYPES)):
        if name in found and any(v not in allowed for v in _split(found[name])):
            return None
    if any(len(str(found.get(n) or "")) > 100 for n in ("priority", "type")):
        return None
    if len(str(found.get("status") or "")) > 500:
        return None
    return command, found


def _split(value: str) -> list[str]:
    """`a, b,,c` -> ["a", "b", "c"] (tracker.domain.models.issues.split_list)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _replica() -> Path | None:
    if any(os.environ.get(name) for name in _ENV_OFF):
        return None
    from tracker.replica.paths import active_replica

    return active_replica()


def _stored_use(view: Path) -> bool:
    """Whether `rhythm use` stored defaults for the view (cli/target.py): then typer decides."""
    explicit = os.environ.get("RHYTHM_CLI_CONTEXT")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    path = Path(explicit) if explicit else Path(base) / "rhythm" / "context.json"
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    return not isinstance(loaded, dict) or bool(loaded.get(str(view.absolute())))


def _meta(replica: Path) -> dict[str, str] | None:
    """org, project, person (what `rhythm clone` set), or None with provisional keys about
    (their display rewriting is cli/offline.py's). Read-only: the journal's own opening
    (tracker.replica.store.Journal) writes its schema and pragmas."""
    with _connect(replica / "replica.db") as journal:
        if journal.execute("SELECT 1 FROM issue_keys WHERE provisional = 1 LIMIT 1").fetchone():
            return None
        return {r[0]: r[1] for r in journal.execute("SELECT key, value FROM meta")}


def _unlocked(view: Path) -> bool:
    """The normal path takes the data directory's lock (a sync or server holds it)."""
    try:
        fd = os.open(view / _LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock
    return True


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _can_read(system: sqlite3.Connection, tenant: sqlite3.Connection, org: str, project: str,
              email: str) -> tuple[str, str, str] | None:  # fmt: skip
    """(user id, project id, project key) when `email` may read the project
    (tracker.domain.permissions.effective_project_role: every project role reads)."""
    member = _member(system, org, email)
    if member is None:
        return None
    user_id, org_role = member
    found = tenant.execute(
        "SELECT p.id, p.key, p.visibility, m.role AS member_role FROM projects p"
        " LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?"
        " WHERE p.key = ? COLLATE NOCASE AND p.deleted_at IS NULL", (user_id, project),
    ).fetchone()  # fmt: skip
    if found is None:
        return None
    org_wide = org_role in ("owner", "admin") or found["visibility"] == "org"
    if not org_wide and found["member_role"] is None:
        return None
    return user_id, found["id"], found["key"]


def _member(system: sqlite3.Connection, org: str, email: str) -> tuple[str, str] | None:
    """(user id, org role) of the person behind `email` in the org, or None."""
    from tracker.domain.emails import normalize_email

    user = system.execute(
        "SELECT id FROM users WHERE email = ? COLLATE NOCASE", (normalize_email(email),)
    ).fetchone()
    if user is None:
        return None
    row = system.execute(
        "SELECT o.id, m.role FROM orgs o LEFT JOIN org_members m ON m.org_id = o.id"
        " AND m.user_id = ? WHERE o.slug = ? AND o.archived_at IS NULL", (user["id"], org),
    ).fetchone()  # fmt: skip
    if row is None or row["role"] is None:
        return None
    return user["id"], row["role"]


def search_rows(view: Path, org: str, project: str, email: str,
                options: dict[str, Any]) -> tuple[list[dict[str, Any]], bool] | None:  # fmt: skip
    """`issue search` over every project the person sees (cli/search.py `find`, no
    --project): the query language's own SQL (tracker.storage.search), rows in page order."""
    from datetime import UTC, datetime

    from tracker.domain.emails import normalize_email
    from tracker.domain.query import parse_query
    from tracker.errors import RhythmError
    from tracker.storage.search import SearchSpec, search
    from tracker.storage.search_filters import FilterContext, emails_in
    from tracker.storage.search_pages import visible_projects

    with _connect(view / _SYSTEM_DB) as system:
        tenant_path = _tenant(system, view, org)
        member = _member(system, org, email)
        if tenant_path is None or member is None:
            return None
        user_id, org_role = member
        try:
            query = parse_query(options["query"])
        except RhythmError:
            return None
        wanted = sorted(emails_in(query.filters))
        emails = {
            normalize_email(r["email"]): r["id"]
            for r in system.execute(
                "SELECT id, email FROM users WHERE email IN (SELECT value FROM json_each(?))",
                (json.dumps(wanted),),
            )
        } if wanted else {}  # fmt: skip
    with _connect(tenant_path) as tenant:
        see_all = org_role in ("owner", "admin")
        scope = {r["id"]: r["key"] for r in visible_projects(tenant, user_id, see_all)}
        if not scope:
            return [], False
        ctx = FilterContext(tuple(scope), user_id, emails, datetime.now(UTC))
        try:
            page = search(tenant, SearchSpec(query, ctx, options["limit"], None))
        except RhythmError:
            return None
        rows = tenant.execute(
            "SELECT i.row_id, i.project_id, i.number, s.name AS status, i.priority, i.type,"
            " i.title, i.updated_at FROM issues i JOIN stages s ON s.id = i.stage_id"
            " WHERE i.row_id IN (SELECT value FROM json_each(?))", (json.dumps(page.row_ids),),
        ).fetchall()  # fmt: skip
    order = {row_id: n for n, row_id in enumerate(page.row_ids)}
    items = [
        dict(row) | {"key": f"{scope[row['project_id']]}-{row['number']}"}
        for row in sorted(rows, key=lambda row: order[row["row_id"]])
    ]
    return items, page.next is not None


def _names(system: sqlite3.Connection, people: list[str]) -> dict[str, str]:
    """id -> "Display Name <email>" (cli/people.py names_of)."""
    return {
        r["id"]: f"{r['display_name']} <{r['email']}>" if r["display_name"] else r["email"]
        for r in system.execute(
            "SELECT id, email, display_name FROM users WHERE id IN"
            " (SELECT value FROM json_each(?))", (json.dumps(sorted(set(people))),),
        )
    }  # fmt: skip


Table = tuple[list[dict[str, Any]], list[str]]


def board_rows(view: Path, org: str, project: str, email: str,
               options: dict[str, Any]) -> Table | None:  # fmt: skip
    """The board's table (cli/boards.py `_columns_table`): rows and headers, or None."""
    from tracker.storage.boards import column_cards, column_counts
    from tracker.storage.stages import list_stages

    with _connect(view / _SYSTEM_DB) as system:
        tenant_path = _tenant(system, view, org)
        if tenant_path is None:
            return None
        with _connect(tenant_path) as tenant:
            access = _can_read(system, tenant, org, project, email)
            if access is None:
                return None
            _, project_id, project_key = access
            counts = column_counts(tenant, project_id)
            columns = [
                (f"{stage['name']} ({counts.get(stage['id'], 0)})",
                 [f"{project_key}-{card[1]} {card[2]}"[:_CARD_WIDTH]
                  for card in column_cards(tenant, project_id, stage["id"], options["limit"])])
                for stage in list_stages(tenant, project_id)
            ]  # fmt: skip
    headers = [header for header, _ in columns]
    depth = max((len(cards) for _, cards in columns), default=0)
    rows = [{header: cards[n] for header, cards in columns if n < len(cards)} for n in range(depth)]
    return rows, headers


def _tenant(system: sqlite3.Connection, view: Path, org: str) -> Path | None:
    row = system.execute(
        "SELECT id FROM orgs WHERE slug = ? AND archived_at IS NULL", (org,)
    ).fetchone()
    path = view / (row["id"] if row else "-") / _TENANT_DB
    return path if row is not None and path.is_file() else None


def list_rows(view: Path, org: str, project: str, email: str,
              options: dict[str, Any]) -> tuple[list[dict[str, Any]], bool] | None:  # fmt: skip
    """The listed issues' table rows and whether there are more, or None (not taken)."""
    from tracker.storage.issue_pages import IssueFilter, page_sql

    with _connect(view / _SYSTEM_DB) as system:
        tenant_path = _tenant(system, view, org)
        if tenant_path is None:
            return None
        with _connect(tenant_path) as tenant:
            access = _can_read(system, tenant, org, project, email)
            if access is None:
                return None
            _, project_id, project_key = access
            sort, direction = options.get("sort", "number-desc").split("-")
            filters = IssueFilter(
                statuses=_split(options.get("status") or ""),
                priorities=_split(options.get("priority") or ""),
                types=_split(options.get("type") or ""),
            )
            page, args, order = page_sql(project_id, filters, sort, direction == "desc", None)
            limit: int = options["limit"]
            rows = tenant.execute(
                "SELECT ?1 || '-' || i.number AS key, s.name AS status, i.priority, i.type,"
                " i.title, i.updated_at, (SELECT json_group_array(user_id) FROM (SELECT user_id"
                " FROM issue_assignees WHERE issue_id = i.id ORDER BY user_id)) AS assignees"
                f" FROM issues i JOIN stages s ON s.id = i.stage_id WHERE i.row_id IN ({page})"
                f" ORDER BY {order}", [project_key, *args, limit + 1],
            ).fetchall()  # fmt: skip
        items = [dict(row) | {"assignees": json.loads(row["assignees"])} for row in rows]
        names = _names(system, [u for item in items[:limit] for u in item["assignees"]])
    for item in items:
        item["assignees"] = ", ".join(
            names.get(u, f"(unknown user {u[:8]})") for u in item["assignees"]
        )
    return items[:limit], len(items) > limit


def run(args: list[str]) -> bool:
    """Answer `args` here if this path takes them (True: done, printed); else False."""
    parsed = parse(args)
    if parsed is None or sys.stdout.isatty() or any("-~" in word for word in args):
        return False
    command, options = parsed
    replica = _replica()
    if replica is None or _stored_use(replica / "view") or not _unlocked(replica / "view"):
        return False
    try:
        meta = _meta(replica)
        if meta is None or not all(meta.get(k) for k in ("org", "project", "email")):
            return False
        where = (replica / "view", meta["org"], meta["project"], meta["email"], options)
        out = _COMMANDS[command](*where)
    except sqlite3.Error:
        return False
    if out is None:
        return False
    sys.stdout.write("".join(f"{line}\n" for line in out))
    return True


def _table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> list[str]:
    """cli/context.py print_table, piped: tab-separated lines, a header first."""
    flat = str.maketrans("\t\r\n", "   ")
    cells = [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    lines = [f"# {title}".translate(flat)] if title else []
    return lines + ["\t".join(cell.translate(flat) for cell in line) for line in [columns, *cells]]


def _issue_list(*where: Any) -> list[str] | None:
    found = list_rows(*where)
    if found is None:
        return None
    rows, more = found
    options = where[-1]
    if options["quiet"]:
        return [row["key"] for row in rows]
    more_line = [f"(more than {options['limit']}; raise --limit or filter)"] if more else []
    return _table(rows, COLUMNS) + more_line


def _board(*where: Any) -> list[str] | None:
    found = board_rows(*where)
    if found is None:
        return None
    return _table(*found, title=f"{where[2].upper()} board")


#: cli/search.py COLUMNS.
SEARCH_COLUMNS = ["key", "status", "priority", "type", "title", "updated_at"]


def _search(*where: Any) -> list[str] | None:
    found = search_rows(*where)
    if found is None:
        return None
    rows, more = found
    more_line = [f"(more than {where[-1]['limit']}; raise --limit or narrow the query)"]
    return _table(rows, SEARCH_COLUMNS) + (more_line if more else [])


_COMMANDS = {"issue list": _issue_list, "board": _board, "issue search": _search}


def main() -> None:
    """Console-script entry point: the fast path, else the whole typer CLI."""
    if not run(sys.argv[1:]):
        from cli.main import run as run_typer

        run_typer()
