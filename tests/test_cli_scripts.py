"""`rhythm script list|push|show|log|run|disable|enable` on a data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import ACME_SETUP, ANN, cli_on, tenant_rows

SOURCE = """
on_manual(function(ctx)
  log("hello from", ctx.project.key)
  if ctx.issue then ctx.issue:add_comment("hi from a script") end
end)
on_event("issue.created", function(ctx) end)
"""


@pytest.fixture
def rhythm(tmp_path: Path) -> Any:
    return cli_on(tmp_path / "data", ACME_SETUP)


def test_push_show_run_log_disable(rhythm: Any, tmp_path: Path) -> None:
    path = tmp_path / "greeter.lua"
    path.write_text(SOURCE, encoding="utf-8")
    result = rhythm("script", "push", str(path), "-o", "acme", "-p", "WEB", "--as", ANN, "--json")
    assert result.exit_code == 0, result.output
    script = json.loads(result.stdout)
    assert (script["name"], script["revision"]) == ("greeter", 1)
    path.write_text(SOURCE + "\n-- second revision\n", encoding="utf-8")
    result = rhythm("script", "push", str(path), "-o", "acme", "-p", "WEB", "--as", ANN)
    assert result.exit_code == 0 and "revision 2" in result.stdout

    result = rhythm("script", "list", "-o", "acme", "-p", "WEB")
    assert result.exit_code == 0 and "greeter" in result.stdout
    result = rhythm("script", "show", "greeter", "-o", "acme", "-p", "WEB")
    assert "on event: issue.created" in result.stdout and "second revision" in result.stdout

    result = rhythm("issue", "create", "Hello", "-o", "acme", "-p", "WEB", "--as", ANN)
    assert result.exit_code == 0, result.output
    result = rhythm(
        "script",
        "run",
        "greeter",
        "-o",
        "acme",
        "-p",
        "WEB",
        "--issue",
        "WEB-1",
        "--as",
        ANN,
        "--json",
    )
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "ok" and run["logs"] == ["hello from WEB"]
    assert tenant_rows(rhythm, "SELECT body FROM comments") == [("hi from a script",)]
    origins = tenant_rows(rhythm, "SELECT DISTINCT origin FROM changes WHERE entity = 'comment'")
    assert origins == [("script",)]

    result = rhythm("script", "log", "greeter", "-o", "acme", "-p", "WEB", "--json")
    assert [r["status"] for r in json.loads(result.stdout)["items"]] == ["ok"]

    result = rhythm("script", "disable", "greeter", "-o", "acme", "-p", "WEB", "--as", ANN)
    assert result.exit_code == 0 and "disabled" in result.stdout
    result = rhythm("script", "enable", "greeter", "-o", "acme", "-p", "WEB", "--as", ANN)
    assert result.exit_code == 0 and "enabled" in result.stdout


def test_push_refuses_a_bad_file_naming_the_line(rhythm: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.lua"
    path.write_text("local a = 1\nlocal = 2\n", encoding="utf-8")
    result = rhythm("script", "push", str(path), "-o", "acme", "-p", "WEB", "--as", ANN)
    assert result.exit_code == 1
    assert "source: line 2: <name> expected near '='" in result.output
    result = rhythm("script", "push", str(path), "-o", "acme", "-p", "WEB")
    assert result.exit_code == 1 and "--as" in result.output
    result = rhythm("script", "show", "nothing", "-o", "acme", "-p", "WEB")
    assert result.exit_code == 3 and "no script named nothing" in result.output  # not found
