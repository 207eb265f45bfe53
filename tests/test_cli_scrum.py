"""Daily work entirely by CLI: a Scrum walk-through, the stored context, people by email,
and the commands that were missing (tags, stages and rules, fields, links, time, saved
searches, delete/restore)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import ACME_SETUP, ANN, PASSWORD_INPUT, cli_on, items, tenant_rows

BOB = "bob@example.com"
TODAY = date.today()


@pytest.fixture
def rhythm(tmp_path: Path) -> Any:
    run = cli_on(tmp_path / "data", [*ACME_SETUP, ("user", "create", BOB, "--name", "Bob")])
    assert run("member", "add", "acme", BOB, "--role", "member").exit_code == 0
    assert run("use", "acme/WEB", "--as", ANN).exit_code == 0
    return run


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_scrum_walk_through_by_cli(rhythm: Any) -> None:
    for title, estimate in (("Login", "60"), ("Signup", "120"), ("Logout", "30")):
        ok(rhythm("issue", "create", title, "--estimate", estimate))
    ok(rhythm("sprint", "create", "Sprint 1", "--goal", "accounts"))
    # planned without dates: it cannot start until `sprint update` gives it both
    assert rhythm("sprint", "start", "Sprint 1").exit_code == 1
    ends = str(TODAY + timedelta(days=13))
    ok(rhythm("sprint", "update", "Sprint 1", "--starts", str(TODAY), "--ends", ends))
    for key in ("WEB-1", "WEB-2", "WEB-3"):
        ok(rhythm("issue", "update", key, "--sprint", "Sprint 1"))
    ok(rhythm("issue", "update", "WEB-3", "--sprint", "none"))  # back to the backlog
    listed = items(ok(rhythm("issue", "list", "--sprint", "Sprint 1", "--json")).stdout)
    assert sorted(i["key"] for i in listed) == ["WEB-1", "WEB-2"]
    ok(rhythm("sprint", "start", "Sprint 1"))
    # move cards: one to In Progress, one to Done
    ok(rhythm("issue", "update", "WEB-1", "--status", "Resolved", "--assignee", "me"))
    ok(rhythm("issue", "update", "WEB-2", "--status", "In Progress"))
    board = json.loads(ok(rhythm("board", "--sprint", "Sprint 1", "--json")).stdout)
    counts = {c["stage"]["name"]: c["count"] for c in board["columns"]}
    assert counts["Resolved"] == 1 and counts["In Progress"] == 1
    swim = ok(rhythm("board", "--sprint", "Sprint 1", "--swimlanes")).stdout
    assert ANN in swim and "unassigned" in swim
    done = json.loads(ok(rhythm("sprint", "complete", "Sprint 1", "--json")).stdout)
    assert done["state"] == "completed"
    leftover = json.loads(ok(rhythm("issue", "show", "WEB-2", "--json")).stdout)
    assert leftover["sprint_id"] is None  # unfinished work went back to the backlog
    finished = json.loads(ok(rhythm("issue", "show", "WEB-1", "--json")).stdout)
    assert finished["sprint_id"] == done["id"]
    burndown = json.loads(ok(rhythm("sprint", "burndown", "Sprint 1", "--json")).stdout)
    assert burndown["days"] and burndown["days"][0]["scope_issues"] == 2
    origins = tenant_rows(rhythm, "SELECT DISTINCT origin FROM changes WHERE entity='sprint'")
    assert origins == [("cli",)]


def test_context_env_and_options_in_that_order(rhythm: Any) -> None:
    status = ok(rhythm("status")).stdout
    assert "acme" in status and "WEB" in status and ANN in status and "rhythm use" in status
    ok(rhythm("issue", "create", "ctx"))
    reporter = tenant_rows(rhythm, "SELECT reporter FROM issues")[0][0]
    assert json.loads(rhythm("issue", "show", "WEB-1", "--json").stdout)["reporter"] == reporter
    # an option beats the context; an unknown org from the option is "not found"
    assert rhythm("issue", "list", "-o", "nope").exit_code == 3
    ok(rhythm("use", "--clear"))
    missing = rhythm("issue", "list")
    assert missing.exit_code == 1 and "rhythm use" in missing.stderr
    assert missing.stderr.count("\n") == 1
    anonymous = rhythm("issue", "create", "x", "-o", "acme", "-p", "WEB")
    assert anonymous.exit_code == 1 and "--as" in anonymous.stderr
    bad = rhythm("use", "not a slug/!!")
    assert bad.exit_code == 1 and "ORG/KEY" in bad.stderr


def test_env_overrides_the_stored_context(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from tests.cli_world import CHEAP_ARGON

    data = tmp_path / "data"
    env = {**CHEAP_ARGON, "RHYTHM_CLI_CONTEXT": str(tmp_path / "ctx.json"), "RHYTHM_AS": None}
    runner = CliRunner()

    def run(*args: str, **extra: str) -> Any:
        return runner.invoke(app, [*args, "-d", str(data)], input=PASSWORD_INPUT,
                             env={**env, **extra})  # fmt: skip

    for args in ACME_SETUP:
        ok(run(*args))
    ok(run("org", "create", "Beta", "--slug", "beta", "--as", ANN))
    ok(run("project", "create", "beta", "API", "Api"))
    ok(run("use", "acme/WEB", "--as", ANN))
    ok(run("issue", "create", "in web"))
    ok(run("issue", "create", "in api", RHYTHM_ORG="beta", RHYTHM_PROJECT="API"))
    status = ok(run("status", RHYTHM_ORG="beta")).stdout
    assert "beta" in status and "$RHYTHM_ORG" in status
    keys = items(ok(run("issue", "list", "--json", RHYTHM_ORG="beta", RHYTHM_PROJECT="API")).stdout)
    assert [i["key"] for i in keys] == ["API-1"]


def test_people_by_email_or_me_shown_by_name(rhythm: Any) -> None:
    users = ok(rhythm("user", "list")).stdout
    assert ANN in users and "Bob" in users
    assert ok(rhythm("user", "list", "--quiet")).stdout.split() == [ANN, BOB]
    ok(rhythm("member", "add", "acme", BOB, "-p", "WEB", "--role", "developer"))
    ok(rhythm("issue", "create", "pair", "--assignee", "me", "--assignee", BOB))
    table = ok(rhythm("issue", "list")).stdout
    assert "Bob <bob@exa" in table and "-" not in table.split("pair")[1][:3]
    shown = ok(rhythm("issue", "show", "WEB-1")).stdout
    assert f"assignees: {ANN}, Bob <bob@example.com>" in shown
    assert f"reporter: {ANN}" in shown
    ids = json.loads(rhythm("issue", "show", "WEB-1", "--json").stdout)["assignees"]
    assert len(ids) == 2  # --json keeps the API's user ids
    mine = items(ok(rhythm("issue", "list", "--assignee", BOB, "--json")).stdout)
    assert [i["key"] for i in mine] == ["WEB-1"]
    ok(rhythm("issue", "update", "WEB-1", "--assignee", "none"))
    assert json.loads(rhythm("issue", "show", "WEB-1", "--json").stdout)["assignees"] == []
    ghost = rhythm("issue", "update", "WEB-1", "--assignee", "ghost@example.com")
    assert ghost.exit_code == 3 and "ghost@example.com" in ghost.stderr


def test_issue_lifecycle_links_time_and_history(rhythm: Any) -> None:
    ok(rhythm("issue", "create", "one"))
    ok(rhythm("issue", "create", "two"))
    assert ok(rhythm("issue", "create", "three", "-q")).stdout == "WEB-3\n"
    ok(rhythm("issue", "link", "WEB-1", "blocks", "WEB-2"))
    assert "is_blocked_by" in ok(rhythm("issue", "links", "WEB-2")).stdout
    assert rhythm("issue", "link", "WEB-1", "blocks", "WEB-2").exit_code == 4
    ok(rhythm("issue", "unlink", "WEB-2", "WEB-1"))
    assert items(ok(rhythm("issue", "links", "WEB-1", "--json")).stdout) == []
    assert rhythm("issue", "unlink", "WEB-2", "WEB-1").exit_code == 3
    ok(rhythm("issue", "log-time", "WEB-1", "1h30m", "-m", "pairing"))
    assert tenant_rows(rhythm, "SELECT seconds_spent FROM time_entries") == [(5400,)]
    assert rhythm("issue", "log-time", "WEB-1", "soon").exit_code == 1
    ok(rhythm("issue", "comment", "WEB-1", "first!"))
    assert "first!" in ok(rhythm("issue", "comments", "WEB-1")).stdout
    assert "first!" in ok(rhythm("issue", "show", "WEB-1")).stdout
    history = ok(rhythm("issue", "history", "WEB-1")).stdout
    assert "time_entry create" in history and ANN in history, history
    assert "watching WEB-2 (reporter" in ok(rhythm("issue", "watch", "WEB-2")).stdout
    ok(rhythm("issue", "watch", "WEB-3", "--as", BOB))
    watchers = ok(rhythm("issue", "watchers", "WEB-3")).stdout
    assert "Bob <bob@example.com>\twatching" in watchers and ANN in watchers
    assert "not watching" in ok(rhythm("issue", "watch", "WEB-3", "--off", "--as", BOB)).stdout
    assert "Bob" not in ok(rhythm("issue", "watchers", "WEB-3")).stdout
    ok(rhythm("issue", "delete", "WEB-2"))
    assert rhythm("issue", "show", "WEB-2").exit_code == 3
    assert rhythm("issue", "delete", "WEB-1", "--if-version", "9").exit_code == 4
    ok(rhythm("issue", "restore", "WEB-2"))
    assert rhythm("issue", "restore", "WEB-2").exit_code == 4
    assert ok(rhythm("issue", "list", "-q")).stdout.split() == ["WEB-3", "WEB-2", "WEB-1"]


def test_tags_stages_rules_and_fields(rhythm: Any) -> None:
    ok(rhythm("tag", "create", "backend", "--color", "#112233"))
    assert "backend" in ok(rhythm("tag", "list")).stdout
    ok(rhythm("stage", "create", "Review", "--category", "in_progress", "--position", "2"))
    ok(rhythm("stage", "update", "review", "--name", "Code review"))
    stages = [s["name"] for s in items(ok(rhythm("stage", "list", "--json")).stdout)]
    assert stages[2] == "Code review"
    ok(rhythm("stage", "allow", "Open", "In Progress"))
    assert "Open" in ok(rhythm("stage", "rules")).stdout
    ok(rhythm("issue", "create", "gated", "--tag", "backend"))
    refused = rhythm("issue", "update", "WEB-1", "--status", "Resolved", "--as", ANN)
    assert refused.exit_code == 4 and refused.stderr.count("\n") == 1
    ok(rhythm("stage", "disallow", "Open", "In Progress"))
    assert json.loads(ok(rhythm("stage", "rules", "--json")).stdout) == {"rules": []}
    ok(rhythm("issue", "update", "WEB-1", "--status", "Code review"))
    in_use = rhythm("stage", "delete", "Code review")
    assert in_use.exit_code == 4
    ok(rhythm("stage", "delete", "Code review", "--move-to", "Open"))
    ok(rhythm("field", "create", "Severity", "--type", "enum", "--option", "low",
              "--option", "high", "--required"))  # fmt: skip
    ok(rhythm("field", "update", "severity", "--optional", "--option", "low",
              "--option", "high", "--option", "urgent"))  # fmt: skip
    ok(rhythm("issue", "update", "WEB-1", "--field", "Severity=urgent"))
    fields = items(ok(rhythm("field", "list", "--json")).stdout)
    assert fields[0]["options"] == ["low", "high", "urgent"] and not fields[0]["required"]
    ok(rhythm("field", "delete", "Severity"))
    ok(rhythm("tag", "delete", "backend"))
    assert json.loads(rhythm("issue", "show", "WEB-1", "--json").stdout)["tags"] == []


def test_saved_searches(rhythm: Any) -> None:
    ok(rhythm("issue", "create", "crash on login", "--assignee", "me"))
    ok(rhythm("issue", "create", "other"))
    ok(rhythm("search", "save", "mine", "assignee:me", "--org", "acme"))
    assert rhythm("search", "save", "mine", "x").exit_code == 4
    assert "assignee:me" in ok(rhythm("search", "list")).stdout
    found = ok(rhythm("search", "run", "mine", "--json")).stdout
    assert [h["key"] for h in json.loads(found)["items"]] == ["WEB-1"]
    ok(rhythm("search", "delete", "mine"))
    assert rhythm("search", "run", "mine").exit_code == 3
    assert rhythm("search", "list", "--as", BOB).exit_code == 0


def _editor(tmp_path: Path, body: str, also: str = "") -> str:
    """An $EDITOR that writes `body` into the file (and first runs `also` in the shell)."""
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\n{also}\ncat > \"$1\" <<'TEXT'\n{body}\nTEXT\n")
    script.chmod(0o755)
    return str(script)


def test_issue_edit_in_the_editor_with_if_match(rhythm: Any, tmp_path: Path) -> None:
    import os
    import sys

    from typer.testing import CliRunner

    from cli.main import app

    ok(rhythm("issue", "create", "Old title", "-m", "old body"))
    data_dir = str(rhythm.data_dir)
    env = {"RHYTHM_CLI_CONTEXT": str(Path(data_dir).parent / "cli-context.json"),
           "VISUAL": None, "RHYTHM_ORG": None, "RHYTHM_AS": None}  # fmt: skip

    def edit(editor: str, *args: str) -> Any:
        return CliRunner().invoke(app, ["issue", "edit", "WEB-1", *args, "-d", data_dir],
                                  env={**env, "EDITOR": editor})  # fmt: skip

    ok(edit(_editor(tmp_path, "New title\n\n# Heading\n\nbody *md*")))
    shown = json.loads(rhythm("issue", "show", "WEB-1", "--json").stdout)
    assert (shown["title"], shown["description"]) == ("New title", "# Heading\n\nbody *md*")
    assert shown["version"] == 2
    # someone else edits while the editor is open: refused, nothing overwritten, text kept
    cwd = Path(__file__).resolve().parent.parent
    rival = (f"cd {cwd} && RHYTHM_CLI_CONTEXT=/nonexistent {sys.executable} -m cli.main issue "
             f"update WEB-1 -o acme --title Rival -d {data_dir} > /dev/null")  # fmt: skip
    clash = edit(_editor(tmp_path, "Mine\n\nmy text", also=rival))
    assert clash.exit_code == 4, clash.output
    assert clash.stderr.count("\n") == 1 and "changed since version 2" in clash.stderr
    kept = Path(clash.stderr.split("Your text is in ")[1].split(":")[0])
    assert "my text" in kept.read_text()
    assert json.loads(rhythm("issue", "show", "WEB-1", "--json").stdout)["title"] == "Rival"
    ok(edit("false-editor-never-run", "--from", str(kept)))
    assert json.loads(rhythm("issue", "show", "WEB-1", "--json").stdout)["title"] == "Mine"
    assert kept.exists()  # a file the user named stays
    empty = edit(_editor(tmp_path, "\n\n"))
    assert empty.exit_code == 1 and "empty title" in empty.stderr
    assert os.environ.get("EDITOR") != "false-editor-never-run"


def test_shell_completion_of_orgs_projects_and_issue_keys(rhythm: Any) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    ok(rhythm("issue", "create", "one"))
    ok(rhythm("issue", "create", "two"))
    ok(rhythm("issue", "delete", "WEB-1"))
    data_dir = str(rhythm.data_dir)

    def files() -> list[str]:  # SQLite's own -wal/-shm companions may appear on any read
        return sorted(
            p.name for p in Path(data_dir).iterdir() if p.suffix[-4:] not in ("-wal", "-shm")
        )

    before = files()

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = {"_RHYTHM_COMPLETE": "complete_bash", "COMP_WORDS": line,
               "COMP_CWORD": str(len(words) - 1), "RHYTHM_ORG": None,
               "RHYTHM_CLI_CONTEXT": str(Path(data_dir).parent / "none.json")}  # fmt: skip
        result = CliRunner().invoke(app, [], prog_name="rhythm", env=env)
        return result.output.split()

    assert complete(f"rhythm issue list -d {data_dir} -o a") == ["acme"]
    assert complete(f"rhythm issue list -d {data_dir} -o acme -p W") == ["WEB"]
    assert complete(f"rhythm issue show -d {data_dir} -o acme W") == ["WEB-"]
    assert complete(f"rhythm issue show -d {data_dir} -o acme WEB-") == ["WEB-2"]  # live only
    assert complete(f"rhythm issue show -d {data_dir} -o nope WEB-") == []
    assert complete("rhythm issue list -d /no/such/dir -o a") == []
    assert files() == before
    assert not Path("/no/such/dir").exists()


def test_as_a_person_acts_with_their_roles_the_operator_with_all(rhythm: Any) -> None:
    """`--as` gets the same decision the API gives that person; no person is the operator."""
    ok(rhythm("issue", "create", "Ann's"))
    # bob is an org member: on an org-visible project a reporter, not a workflow admin
    refused = rhythm("stage", "create", "QA", "--category", "in_progress", "--as", BOB)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1, refused.output
    ok(rhythm("issue", "create", "Bob's", "--as", BOB))
    other = rhythm("issue", "update", "WEB-1", "--status", "In Progress", "--as", BOB)
    assert other.exit_code == 1, other.output  # a reporter edits only his own issues' text
    ok(rhythm("use", "--clear"))
    ok(rhythm("stage", "create", "QA", "--category", "in_progress", "-o", "acme", "-p", "WEB"))
    ok(rhythm("issue", "update", "WEB-1", "--status", "QA", "-o", "acme"))
    last = "SELECT actor FROM changes WHERE entity = 'stage' ORDER BY seq DESC LIMIT 1"
    assert tenant_rows(rhythm, last) == [(None,)]  # the operator's changes are the system's
