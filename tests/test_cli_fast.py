"""The fast read path (cli/fast.py) prints what the typer command prints, on the same replica,
falls back whenever it cannot be sure, and keeps typer and pydantic out of the process."""

from __future__ import annotations

import contextlib
import io
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
NOT_TAKEN = [
    ("issue", "list", "--json"),
    ("issue", "list", "--assignee", "me"),
    ("issue", "list", "--limit", "0"),
    ("issue", "list", "--limit", "201"),
    ("issue", "list", "--priority", "urgent"),
    ("issue", "list", "--sort", "title-asc"),
    ("issue", "list", "--project", "WEB"),
    ("issue", "list", "--limit"),
    ("issue", "show", "WEB-1"),
    ("issue", "search", "status:open", "--json"),
    ("issue", "search", "status:open", "--highlight"),
    ("issue", "search", "status:open", "-p", "WEB"),
    ("issue", "search", "status:open", "more"),
    ("issue", "search", "sort:nonsense"),
    ("issue", "search"),
    ("board", "--json"),
    ("board", "--swimlanes"),
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


def test_fast_path_knows_the_sort_orders() -> None:
    assert set(get_args(IssueSort)) == fast._SORTS


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
