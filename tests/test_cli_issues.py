"""`rhythm issue create|list|show|update|comment` on a data directory (typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import ACME_SETUP, ANN, cli_on, tenant_rows


@pytest.fixture
def rhythm(tmp_path: Path) -> Any:
    """`rhythm ... --data-dir <tmp>` with an org `acme`, a project WEB and a user ann."""
    return cli_on(tmp_path / "data", ACME_SETUP)


def test_create_show_update_comment_list(rhythm: Any) -> None:
    result = rhythm(
        "issue", "create", "Login broken", "-o", "acme", "-p", "web", "--type", "bug",
        "--priority", "major", "--tag", "ui", "-m", "Steps...", "--as", ANN, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    issue = json.loads(result.stdout)
    assert (issue["key"], issue["type"], issue["tags"]) == ("WEB-1", "bug", ["ui"])

    result = rhythm("issue", "show", "web-1", "-o", "acme")
    assert result.exit_code == 0 and "WEB-1  Login broken" in result.stdout
    assert "status Open · major · bug · v1" in result.stdout

    result = rhythm("issue", "update", "WEB-1", "-o", "acme", "--status", "Resolved",
                    "--title", "Login fixed", "--as", ANN, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    updated = json.loads(result.stdout)
    assert (updated["status"], updated["title"], updated["version"]) == (
        "Resolved",
        "Login fixed",
        2,
    )
    assert updated["resolved_at"] is not None

    result = rhythm("issue", "comment", "WEB-1", "works now", "-o", "acme", "--as", ANN)
    assert result.exit_code == 0 and "commented on WEB-1" in result.stdout
    rhythm("issue", "create", "Second", "-o", "acme", "-p", "WEB", "--as", ANN)

    result = rhythm("issue", "list", "-o", "acme", "-p", "WEB")
    assert result.exit_code == 0
    assert "WEB-1" in result.stdout and "WEB-2" in result.stdout and "Login fixed" in result.stdout
    result = rhythm("issue", "list", "-o", "acme", "-p", "WEB", "--status", "Open", "--json")
    assert [i["key"] for i in json.loads(result.stdout)["items"]] == ["WEB-2"]

    changes = tenant_rows(
        rhythm, "SELECT entity, op, field, origin FROM changes "
        "WHERE entity IN ('issue', 'comment') ORDER BY seq",
    )  # fmt: skip
    assert changes[:5] == [
        ("issue", "create", None, "cli"), ("issue", "update", "title", "cli"),
        ("issue", "update", "status", "cli"), ("issue", "update", "resolved_at", "cli"),
        ("comment", "create", None, "cli"),
    ]  # fmt: skip
    assert tenant_rows(rhythm, "SELECT comment_count FROM issues WHERE number = 1") == [(1,)]


def test_custom_fields_and_if_version(rhythm: Any) -> None:
    result = rhythm("issue", "create", "x", "-o", "acme", "-p", "WEB", "--as", ANN,
                    "--field", "Nope=1")  # fmt: skip
    assert result.exit_code == 1 and "custom_fields.Nope" in result.output
    rhythm("issue", "create", "x", "-o", "acme", "-p", "WEB", "--as", ANN)
    result = rhythm("issue", "update", "WEB-1", "-o", "acme", "--title", "y", "--if-version", "7")
    assert result.exit_code == 4 and "version 1" in result.output
    assert tenant_rows(rhythm, "SELECT title FROM issues") == [("x",)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("issue", "create", "t", "-o", "acme", "-p", "WEB"), "--as"),
        (("issue", "create", "t", "-o", "acme", "-p", "NOPE", "--as", ANN), "project not found"),
        (("issue", "create", "t" * 600, "-o", "acme", "-p", "WEB", "--as", ANN), "title"),
        (("issue", "create", "t", "-o", "acme", "-p", "WEB", "--as", ANN, "--priority", "x"),
         "priority"),
        (("issue", "create", "t", "-o", "acme", "-p", "WEB", "--as", ANN, "-f", "novalue"),
         "NAME=VALUE"),
        (("issue", "show", "WEB-9", "-o", "acme"), "issue not found"),
        (("issue", "show", "nonsense", "-o", "acme"), "WEB-42"),
        (("issue", "show", "WEB-1", "-o", "nope"), "organization not found"),
        (("issue", "comment", "WEB-9", "hi", "-o", "acme", "--as", ANN), "no issue WEB-9"),
        (("issue", "list", "-o", "acme", "-p", "WEB", "--sort", "title"), "sort"),
    ],
)  # fmt: skip
def test_bad_input_is_a_one_line_error(rhythm: Any, args: tuple[str, ...], message: str) -> None:
    result = rhythm(*args)
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert tenant_rows(rhythm, "SELECT count(*) FROM issues") == [(0,)]
