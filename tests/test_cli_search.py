"""`rhythm issue search` on a data directory (typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app

CHEAP_ARGON = {"RHYTHM_ARGON2_MEMORY_KIB": "8192", "RHYTHM_ARGON2_TIME_COST": "1", "COLUMNS": "200"}
PASSWORDS = "long enough pw\nlong enough pw\n"


def test_issue_search_tables_json_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = str(tmp_path / "data")

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, [*args, "--data-dir", data_dir], input=input, env=CHEAP_ARGON)

    for args in (
        ("user", "create", "ann@example.com"),
        ("user", "create", "bob@example.com"),
        ("org", "create", "Acme", "--slug", "acme", "--as", "ann@example.com"),
        ("project", "create", "acme", "WEB", "Website", "--as", "ann@example.com"),
        ("project", "create", "acme", "SEC", "Secret", "--private", "--as", "ann@example.com"),
        ("member", "add", "acme", "bob@example.com", "--role", "member", "--as", "ann@example.com"),
        ("issue", "create", "Login crash on Safari", "--org", "acme", "--project", "WEB",
         "--type", "bug", "--as", "ann@example.com"),
        ("issue", "create", "Dark mode", "-o", "acme", "-p", "WEB", "--as", "ann@example.com"),
        ("issue", "create", "Secret crash", "-o", "acme", "-p", "SEC", "--as", "ann@example.com"),
    ):  # fmt: skip
        result = run(*args, input=PASSWORDS)
        assert result.exit_code == 0, (args, result.output)

    result = run("issue", "search", "crash", "--org", "acme", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(i["key"] for i in json.loads(result.output)["items"]) == ["SEC-1", "WEB-1"]

    result = run("issue", "search", "crash", "--org", "acme", "--as", "bob@example.com", "--json")
    assert [i["key"] for i in json.loads(result.output)["items"]] == ["WEB-1"]

    result = run("issue", "search", "type:bug reporter:me", "-o", "acme", "-p", "WEB",
                 "--as", "ann@example.com")  # fmt: skip
    assert result.exit_code == 0 and "WEB-1" in result.output and "Login crash" in result.output

    result = run("issue", "search", 'status:"open', "--org", "acme")
    assert result.exit_code == 1 and "unterminated quote (at position 7)" in result.output
    for query in ("parent:WEB-99999999999999999999999", "parent:99999999999999999999999"):
        result = run("issue", "search", query, "--org", "acme")  # was a traceback (int64)
        assert result.exit_code == 1 and "bad parent" in result.output, result.output
        assert isinstance(result.exception, SystemExit), result.exception  # not OverflowError
    result = run("issue", "search", "x", "--org", "nope")
    assert result.exit_code == 3 and "not found" in result.output
    result = run("issue", "search", "parent:WEB-99999999999999999999999", "--org", "acme")
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1
