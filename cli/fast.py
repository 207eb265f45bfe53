"""The fast read path: `rhythm issue list|search` and `rhythm board` on a replica with
sqlite3 alone, no typer.

Start-up, not the query, is what a local read costs: importing typer, pydantic, the
models and `tracker.core` took ~300 ms of a ~400 ms `rhythm issue list` on a
100,000-issue replica, the query a few ms (docs/cli.md, docs/offline.md). This
module answers the common cases with the standard library and
`tracker/replica/reads.py` (sqlite3 on the view, the storage layer's own SQL: the
same queries the services run), and prints what the typer command prints: piped, the
same tab-separated lines; `--json`, the same bytes (the storage's own JSON renderings);
on a terminal, the same box table drawn by `cli/render.py` instead of rich (the same
bytes when the table fits; narrower, its long columns give way first).

It takes the command only when the answer is sure to be the same; anything else
(another command or option, a data directory, RHYTHM_ORG/PROJECT/AS, stored `rhythm
use` defaults, provisional keys, a locked view, a person without read access, input
the models would reject) returns None and `cli.main` runs as ever, errors included.
tests/test_cli_fast.py holds the output to the typer path's on the same data.
"""

from __future__ import annotations

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
_FLAGS = {"--quiet": "quiet", "-q": "quiet", "--json": "json"}
_JSON = {"--json": "json"}
_SORTS = {f"{s}-{d}" for s in ("number", "created", "updated", "priority") for d in ("asc", "desc")}
#: cli/boards.py CARD_WIDTH.
_CARD_WIDTH = 40
_ENV_OFF = ("RHYTHM_DATA_DIR", "RHYTHM_ORG", "RHYTHM_PROJECT", "RHYTHM_AS")


def parse(args: list[str]) -> tuple[str, dict[str, Any]] | None:
    """`issue list|search ...` or `board ...` -> (command, {field: value}), or None when
    this path does not take them."""
    found: dict[str, Any]
    if args[:2] == ["issue", "list"]:
        command, rest = "issue list", args[2:]
        found = {"limit": "50", "quiet": False, "json": False}
        values, flags, top = _VALUES, _FLAGS, 200
    elif args[:1] == ["board"]:
        command, rest, found = "board", args[1:], {"limit": "20", "json": False}
        values, flags, top = {"--limit": "limit"}, _JSON, 200
    elif args[:2] == ["issue", "search"]:
        command, rest, found = "issue search", args[2:], {"limit": "20", "json": False}
        values, flags, top = {"--limit": "limit"}, _JSON, 200
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


def run(args: list[str]) -> bool:
    """Answer `args` here if this path takes them (True: done, printed); else False."""
    parsed = parse(args)
    if parsed is None or any("-~" in word for word in args):
        return False
    if sys.stdout.isatty() and not (sys.stdout.encoding or "").lower().startswith("utf"):
        return False  # no box characters: rich's ASCII table is typer's
    command, options = parsed
    replica = _replica()
    if replica is None or _stored_use(replica / "view"):
        return False
    from tracker.replica import reads

    try:
        if not reads.unlocked(replica / "view"):
            return False
        meta = reads.journal_meta(replica)
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
    """cli/context.py print_table's lines (cli/render.py draws both)."""
    from cli import render

    return render.table_lines(rows, columns, title)


def _issue_list(*where: Any) -> list[str] | None:
    from tracker.replica.reads import list_rows

    options = where[-1]
    if options["json"]:  # before --quiet, as in cli/issues.py
        from tracker.replica.reads import list_json

        text = list_json(*where)
        return None if text is None else [text]
    found = list_rows(*where)
    if found is None:
        return None
    rows, more = found
    if options["quiet"]:
        return [row["key"] for row in rows]
    more_line = [f"(more than {options['limit']}; raise --limit or filter)"] if more else []
    return _table(rows, COLUMNS) + more_line


def _board(*where: Any) -> list[str] | None:
    """cli/boards.py `_columns_table`: a table column per stage, a row per rank position."""
    from tracker.replica.reads import board_columns

    if where[-1]["json"]:
        from tracker.replica.reads import board_json

        text = board_json(*where)
        return None if text is None else [text]
    columns = board_columns(*where)
    if columns is None:
        return None
    headers = [header for header, _ in columns]
    depth = max((len(cards) for _, cards in columns), default=0)
    rows = [
        {header: cards[n][:_CARD_WIDTH] for header, cards in columns if n < len(cards)}
        for n in range(depth)
    ]
    return _table(rows, headers, title=f"{where[2].upper()} board")


#: cli/search.py COLUMNS.
SEARCH_COLUMNS = ["key", "status", "priority", "type", "title", "updated_at"]


def _search(*where: Any) -> list[str] | None:
    from tracker.replica.reads import search_rows

    if where[-1]["json"]:
        from tracker.replica.reads import search_json

        text = search_json(*where)
        return None if text is None else [text]
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
