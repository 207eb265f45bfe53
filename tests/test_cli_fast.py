"""The fast read path (cli/fast.py) prints what the typer command prints, on the same replica,
falls back whenever it cannot be sure, and keeps typer and pydantic out of the process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

from cli import fast
from tests.conftest import Api
from tests.offline_world import Device, World
from tracker.domain.models.issues import ISSUE_TYPES, PRIORITIES, IssueSort
from tracker.replica.engine import TENANT_DB

SAME = [
    ("issue", "list"),
    ("issue", "list", "--limit", "3"),
    ("issue", "list", "--limit=4", "--sort", "priority-asc"),
    ("issue", "list", "--sort", "updated-desc", "--priority", "major,critical"),
    ("issue", "list", "--type", "bug", "--status", "open"),
    ("issue", "list", "--status", "OPEN, nothing", "--sort=number-asc"),
    ("issue", "list", "-q", "--limit", "2"),
    ("issue", "list", "--quiet", "--type", "task"),
    ("issue", "list", "--status", "no such stage"),
    ("board",),
    ("board", "--limit", "2"),
    ("board", "--limit=1"),
    ("issue", "search", "status:open sort:updated"),
    ("issue", "search", "--limit", "2", "issue"),
    ("issue", "search", "priority:major,critical sort:created-asc", "--limit=3"),
    ("issue", "search", "assignee:cat@example.com type:bug"),
    ("issue", "search", "tab -type:bug"),
    ("issue", "search", "no such words anywhere"),
]
JSON_SAME = [
    ("issue", "list", "--json"),
    ("issue", "list", "--json", "--limit", "3", "--sort", "updated-asc"),
    ("issue", "list", "-q", "--json", "--status", "In Progress", "--limit=2"),
    ("issue", "list", "--priority", "major", "--json", "--sort", "priority-desc", "--limit", "1"),
    ("issue", "list", "--json", "--sort", "created-desc", "--limit", "5", "--type", "bug,task"),
    ("issue", "list", "--json", "--status", "no such stage"),
    ("issue", "search", "status:open sort:updated", "--json"),
    ("issue", "search", "--json", "--limit", "2", "issue"),
    ("issue", "search", "--json", "priority:major,critical sort:created-asc", "--limit=3"),
    ("issue", "search", "Ünïcode", "--json"),
    ("issue", "search", "no such words anywhere", "--json"),
    ("board", "--json"),
    ("board", "--limit", "2", "--json"),
]
NOT_TAKEN = [
    ("issue", "list", "--assignee", "me"),
    ("issue", "list", "--limit", "0"),
    ("issue", "list", "--limit", "201"),
    ("issue", "list", "--priority", "urgent"),
    ("issue", "list", "--sort", "title-asc"),
    ("issue", "list", "--project", "WEB"),
    ("issue", "list", "--limit"),
    ("issue", "show", "WEB-1"),
    ("issue", "search", "status:open", "--highlight"),
    ("issue", "search", "status:open", "-p", "WEB"),
    ("issue", "search", "status:open", "more"),
    ("issue", "search", "sort:nonsense"),
    ("issue", "search"),
    ("board", "--swimlanes"),
    ("board", "--json", "--swimlanes"),
    ("issue", "search", "status:open", "--json", "--highlight"),
    ("issue", "list", "--json", "--tag", "ui"),
    ("board", "--sprint", "S1"),
    ("board", "--limit", "201"),
    ("board", "-p", "WEB"),
]


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    for n in range(12):
        title = f"Issue {n}\twith a tab" if n == 3 else f"Issue {n}"
        body: dict[str, Any] = {"title": title, "priority": PRIORITIES[n % 4],
                                "type": ISSUE_TYPES[n % 3]}  # fmt: skip
        if n % 3 == 0:
            body["assignees"] = [found.bob["id"], found.cat["id"]]
        await found.call("POST", "/orgs/acme/projects/WEB/issues", found.ann, json=body)
        if n % 4 == 1:  # a second board column
            await found.call("PATCH", f"/orgs/acme/projects/WEB/issues/{n + 1}", found.ann,
                             json={"status": "In Progress"})  # fmt: skip
    return found


@contextlib.contextmanager
def on(device: Device) -> Iterator[None]:
    """The environment `Device.cli` gives the typer path."""
    saved = dict(os.environ)
    for name in ("RHYTHM_DATA_DIR", "RHYTHM_REPLICA", "RHYTHM_ORG", "RHYTHM_PROJECT", "RHYTHM_AS"):
        os.environ.pop(name, None)
    os.environ["RHYTHM_HOME"] = str(device.home)
    os.environ["RHYTHM_CLI_CONTEXT"] = str(device.home / "context.json")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_fast(device: Device, args: tuple[str, ...]) -> tuple[bool, str]:
    out = io.StringIO()
    with on(device), contextlib.redirect_stdout(out):
        taken = fast.run(list(args))
    return taken, out.getvalue()


async def test_fast_path_prints_what_typer_prints(world: World) -> None:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    for args in SAME:
        typer_result = await bob.cli(*args)
        assert typer_result.exit_code == 0, (args, typer_result.output)
        taken, printed = run_fast(bob, args)
        assert taken, args
        assert printed == typer_result.stdout, args
    assert "bob@example.com, cat@example.com" in run_fast(bob, ("issue", "list"))[1]
    assert "(more than 3; raise --limit or filter)" in run_fast(bob, SAME[1])[1]
    board = run_fast(bob, ("board", "--limit", "2"))[1].splitlines()
    assert board[:2] == ["# WEB board", "Open (9)\tIn Progress (3)\tResolved (0)\tClosed (0)"]
    assert board[2].startswith("WEB-1")
    found = run_fast(bob, ("issue", "search", "assignee:cat@example.com type:bug"))[1]
    keys = [line.split("\t")[0] for line in found.splitlines()]
    assert keys == ["key", "WEB-10", "WEB-7", "WEB-4", "WEB-1"]


async def test_fast_path_leaves_the_rest_to_typer(world: World) -> None:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    for args in NOT_TAKEN:
        assert run_fast(bob, args) == (False, ""), args
    with on(bob):
        os.environ["RHYTHM_AS"] = "cat@example.com"
        assert fast.run(["issue", "list"]) is False
    bob.create("WEB", "Written offline")  # a provisional key: its display is cli/offline.py's
    assert run_fast(bob, ("issue", "list")) == (False, "")
    listed = await bob.cli("issue", "list")
    assert listed.exit_code == 0 and "WEB-~" in listed.stdout


async def test_fast_path_reads_only_what_the_person_may_read(world: World) -> None:
    """The view edited under the replica's person: an org-visible project still reads (same
    output); a private one they are not a member of is typer's to refuse."""
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    replica = bob.replica()
    try:
        tenant = replica.view / replica.org_id / TENANT_DB
    finally:
        replica.close()

    def edit(sql: str) -> None:
        with contextlib.closing(sqlite3.connect(tenant)) as conn, conn:
            conn.execute(sql)

    edit(f"DELETE FROM project_members WHERE user_id = '{world.bob['id']}'")
    edit("UPDATE projects SET visibility = 'org'")
    for args in (("issue", "list"), ("board",), ("issue", "search", "issue")):
        typer_result = await bob.cli(*args)
        assert typer_result.exit_code == 0, typer_result.output
        assert run_fast(bob, args) == (True, typer_result.stdout)
    edit("UPDATE projects SET visibility = 'private'")
    for args in (("issue", "list"), ("board",)):
        typer_result = await bob.cli(*args)
        assert typer_result.exit_code == 3, typer_result.output  # not found
        assert run_fast(bob, args) == (False, "")
    typer_result = await bob.cli("issue", "search", "issue")
    assert typer_result.exit_code == 0 and typer_result.stdout.splitlines()[1:] == []
    assert run_fast(bob, ("issue", "search", "issue")) == (True, typer_result.stdout)


async def test_json_is_the_typer_path_s(world: World) -> None:
    """`--json` through the fast path: the typer path's bytes (pydantic's indented dump of
    the page, cursor included), with tags, a parent, a due date and text to escape."""
    body = {"title": 'Ünïcode 日本 "quoted" \\ back', "tags": ["ui", "back end"],
            "parent": "WEB-1", "due_date": "2027-01-02", "estimate": 90,
            "description": "line one\nline two\ttab"}  # fmt: skip
    await world.call("PATCH", "/orgs/acme/projects/WEB/issues/2", world.ann, json=body)
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    for args in JSON_SAME:
        typer_result = await bob.cli(*args)
        assert typer_result.exit_code == 0, (args, typer_result.output)
        taken, printed = run_fast(bob, args)
        assert taken, args
        assert printed == typer_result.stdout, args
    page = json.loads(run_fast(bob, ("issue", "list", "--json", "--limit", "11"))[1])
    assert page["next_cursor"] and len(page["items"]) == 11
    second = next(item for item in page["items"] if item["number"] == 2)
    assert second["tags"] == ["back end", "ui"] and second["parent"] == "WEB-1"


def test_fast_path_knows_the_sort_orders_and_shapes() -> None:
    from tracker.domain.models.workflow import Stage
    from tracker.replica.reads import STAGE_FIELDS

    assert set(get_args(IssueSort)) == fast._SORTS
    assert tuple(Stage.model_fields) == STAGE_FIELDS


async def test_the_process_imports_neither_typer_nor_pydantic(world: World) -> None:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    with on(bob):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "cli.main", "issue", "list", "-q"],
            capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent,
        )  # fmt: skip
    assert done.stdout.split() == [f"WEB-{n}" for n in range(12, 0, -1)]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()}
    assert "cli.fast" in imported
    assert not {"typer", "pydantic", "tracker.core", "click"} & imported
    assert not {"dataclasses", "inspect"} & imported  # ~10 ms (docs/offline.md)
    for args in (["issue", "list", "--json"], ["issue", "search", "issue", "--json"],
                 ["board", "--json"]):  # fmt: skip
        with on(bob):
            done = subprocess.run(
                [sys.executable, "-X", "importtime", "-m", "cli.main", *args],
                capture_output=True, text=True, check=True, cwd=ROOT,
            )  # fmt: skip
        assert json.loads(done.stdout), args
        imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()}
        assert "cli.fast" in imported, args
        assert not {"typer", "pydantic", "tracker.core", "click", "rich"} & imported, args
        if args[0] == "board" or args[1] == "list":  # a search's query language has them
            assert not {"dataclasses", "inspect"} & imported, args


ROOT = Path(__file__).parent.parent
#: The typer path in its own process (cli.main:run skips cli/fast.py).
TYPER = [sys.executable, "-c", "from cli.main import run; run()"]
FAST = [sys.executable, "-X", "importtime", "-m", "cli.main"]
ON_A_TERMINAL = [
    ("issue", "list"),
    ("issue", "list", "--limit", "3", "--sort", "priority-asc"),
    ("board", "--limit", "2"),
    ("issue", "search", "status:open sort:updated"),
    ("issue", "list", "-q", "--limit", "2"),
]


def on_a_terminal(device: Device, argv: list[str], **env: str) -> tuple[str, set[str]]:
    """Run `argv` with stdout on a pseudo-terminal of 40 rows and $COLUMNS columns: what it
    printed (line ends as written) and, from -X importtime, the modules it imported."""
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    columns = int(env.get("COLUMNS", "80"))
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    attrs = termios.tcgetattr(follower)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as printed
    termios.tcsetattr(follower, termios.TCSANOW, attrs)
    names = ("RHYTHM_DATA_DIR", "RHYTHM_REPLICA", "RHYTHM_ORG", "RHYTHM_PROJECT", "RHYTHM_AS",
             "NO_COLOR", "FORCE_COLOR", "COLUMNS")  # fmt: skip
    full = {k: v for k, v in os.environ.items() if k not in names}
    full |= {"RHYTHM_HOME": str(device.home), "TERM": "xterm-256color",
             "RHYTHM_CLI_CONTEXT": str(device.home / "context.json")} | env  # fmt: skip
    child = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=full, cwd=ROOT)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = child.communicate()
    assert child.returncode == 0, err.decode()
    imported = {line.split("|")[-1].strip() for line in err.decode().splitlines()}
    return b"".join(chunks).decode(), imported


def rows_of(table: str) -> list[list[str]]:
    """The cells of each line of a box table (escape codes and borders dropped)."""
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", table)
    return [[cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
            for line in plain.splitlines() if line[:1] in ("│", "┃")]  # fmt: skip


async def test_on_a_terminal_the_fast_path_draws_the_typer_table(world: World) -> None:
    """Under a pseudo-terminal wide enough for the table: the bytes rich prints, escape codes
    included, with neither typer nor rich imported. (Not with a tab in a title: rich counts
    it as no column and then draws it as a space, cutting the title; see below.)"""
    await world.call("PATCH", "/orgs/acme/projects/WEB/issues/4", world.ann,
                     json={"title": "Issue 3 with no tab"})  # fmt: skip
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    for args in ON_A_TERMINAL:
        expected, _ = on_a_terminal(bob, [*TYPER, *args], COLUMNS="250")
        printed, modules = on_a_terminal(bob, [*FAST, *args], COLUMNS="250")
        assert printed == expected, args
        assert "cli.fast" in modules
        assert not {"typer", "rich", "pydantic", "tracker.core", "click"} & modules, args
    printed, _ = on_a_terminal(bob, [*FAST, "issue", "list"], COLUMNS="250")
    assert "\x1b[1m" in printed  # bold headers
    assert [row[0] for row in rows_of(printed)] == ["key", *(f"WEB-{n}" for n in range(12, 0, -1))]
    assert rows_of(printed)[9][:5] == ["WEB-4", "Open", "minor", "bug", "Issue 3 with no tab"]


async def test_a_narrow_terminal_keeps_keys_whole(world: World) -> None:
    """80 columns cannot hold `issue list`: the widest columns give way, the key and status
    stay whole (rich cut every column evenly: the keys vanished); NO_COLOR: no escapes;
    a tab in a title is a space."""
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    taken, piped = run_fast(bob, ("issue", "list"))  # held to the typer path's above
    assert taken
    typer_rows = [line.split("\t") for line in piped.splitlines()]
    printed, _ = on_a_terminal(bob, [*FAST, "issue", "list"], COLUMNS="80", NO_COLOR="1")
    assert "\x1b[" not in printed
    assert all(len(line) <= 80 for line in printed.splitlines())
    rows = rows_of(printed)
    assert len(rows) == len(typer_rows) == 13
    for row, full in zip(rows, typer_rows, strict=True):
        assert row[:4] == full[:4]  # key, status, priority, type
        for cell, whole in zip(row[4:], full[4:], strict=True):
            whole = whole.replace("\t", " ")
            assert cell == whole or (cell.endswith("…") and whole.startswith(cell[:-1]))
    wide, _ = on_a_terminal(bob, [*FAST, "issue", "list"], COLUMNS="250")
    assert rows_of(wide)[9][:5] == ["WEB-4", "Open", "minor", "bug", "Issue 3 with a tab"]


def test_the_box_table_is_rich_s_when_it_fits() -> None:
    """cli/render.py against rich itself (what the typer path draws), on random tables that
    fit their width: the same bytes, escape codes included; too wide, every line fits."""
    import random

    from rich.console import Console
    from rich.table import Table

    from cli.render import cell_len, table

    rnd = random.Random(7)
    words = ["WEB-1", "Open", "In Progress", "日本語", "crash", "x", "", "é", "a b c",
             "Bob <bob@example.com>", "2026-12-06T20:22:21.123456Z"]  # fmt: skip
    checked = 0
    for _ in range(600):
        n = rnd.randint(1, 6)
        columns = [rnd.choice(["key", "status", "title", "Open (9)", "Done (0)"]) for _ in range(n)]
        rows = [[" ".join(rnd.choices(words, k=rnd.randint(0, 3))) for _ in range(n)]
                for _ in range(rnd.randint(0, 5))]  # fmt: skip
        title = rnd.choice([None, "WEB board", "A much longer board title than that"])
        width = rnd.randint(20, 200)
        mine = table(rows, columns, title, width=width, bold=True)
        natural = sum(max(cell_len(c) for c in [h, *(r[k] for r in rows)]) + 2
                      for k, h in enumerate(columns))  # fmt: skip
        if natural > width - n - 1:
            assert all(cell_len(line) <= width for line in mine if "\x1b" not in line)
            continue
        drawn = Table(title=title)
        for column in columns:
            drawn.add_column(column, no_wrap=True, overflow="ellipsis")
        for row in rows:
            drawn.add_row(*row)
        out = io.StringIO()
        Console(file=out, force_terminal=True, width=width, color_system="standard").print(drawn)
        assert "".join(f"{line}\n" for line in mine) == out.getvalue(), (columns, rows, width)
        checked += 1
    assert checked > 200


def test_the_fast_path_renders_issues_with_the_storage_sql() -> None:
    """reads.issue_json_sql is tracker/storage/issues.py ISSUE_JSON (what the services list
    with), and issue_shape.FIELDS the model's (checked in test_storage_issue_shape too)."""
    from tracker.replica.reads import issue_json_sql
    from tracker.storage.issues import ISSUE_JSON

    assert issue_json_sql() == ISSUE_JSON


def test_width_and_styles_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import render

    monkeypatch.setenv("COLUMNS", "77")
    assert render.terminal_width() == 77
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert render.styled()
    monkeypatch.setenv("NO_COLOR", "1")
    assert not render.styled()
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not render.styled()
    lines = render.table([["WEB-1", "x"]], ["key", "title"], "T", width=40, bold=False)
    assert not any("\x1b" in line for line in lines)


async def test_typer_tables_show_titles_literally(world: World) -> None:
    """Every command's table (cli/context.py print_table) draws with cli/render.py: a title
    that looks like rich markup is shown as typed ("[/]" used to crash the command)."""
    await world.call("PATCH", "/orgs/acme/projects/WEB/issues/4", world.ann,
                     json={"title": "[api] a [/] b"})  # fmt: skip
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    printed, _ = on_a_terminal(bob, [*TYPER, "issue", "list"], COLUMNS="250")
    assert "[api] a [/] b" in printed
