"""`rhythm board` and `rhythm sprint list|create|start|complete` on a data directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import ACME_SETUP, ANN, cli_on, items, tenant_rows

TODAY = datetime.now(UTC).date()


@pytest.fixture
def rhythm(tmp_path: Path) -> Any:
    """`rhythm ... --data-dir <tmp>` with org `acme`, project WEB, user ann, two issues."""
    issues = [
        ("issue", "create", "Login broken", "-o", "acme", "-p", "WEB", "--as", ANN),
        ("issue", "create", "Slow search", "-o", "acme", "-p", "WEB", "--status", "In Progress",
         "--as", ANN),
    ]  # fmt: skip
    return cli_on(tmp_path / "data", [*ACME_SETUP, *issues])


def test_board_as_table_and_json(rhythm: Any) -> None:
    result = rhythm("board", "-o", "acme", "-p", "web")
    assert result.exit_code == 0, result.output
    assert "Open (1)" in result.stdout and "In Progress (1)" in result.stdout
    assert "WEB-1 Login broken" in result.stdout and "WEB-2 Slow search" in result.stdout
    result = rhythm("board", "-o", "acme", "-p", "WEB", "--json", "--limit", "1")
    board = json.loads(result.stdout)
    assert [c["count"] for c in board["columns"]] == [1, 1, 0, 0]
    assert rhythm("board", "-o", "acme", "-p", "NOPE").exit_code == 3  # not found


def test_sprint_create_start_complete_list(rhythm: Any) -> None:
    ends = str(TODAY + timedelta(days=13))
    result = rhythm("sprint", "create", "Sprint 1", "-o", "acme", "-p", "WEB", "--starts",
                    str(TODAY), "--ends", ends, "--goal", "ship", "--as", ANN)  # fmt: skip
    assert result.exit_code == 0 and "created sprint Sprint 1" in result.stdout
    (sprint_id,) = tenant_rows(rhythm, "SELECT id FROM sprints")[0]
    assert rhythm("sprint", "start", "sprint 1", "-o", "acme", "-p", "WEB").exit_code == 0
    result = rhythm("sprint", "start", sprint_id, "-o", "acme", "-p", "WEB")
    assert result.exit_code == 4 and "already active" in result.output  # conflict
    result = rhythm("sprint", "complete", "Sprint 1", "-o", "acme", "-p", "WEB", "--as", ANN,
                    "--json")  # fmt: skip
    assert result.exit_code == 0 and json.loads(result.stdout)["state"] == "completed"
    result = rhythm("sprint", "list", "-o", "acme", "-p", "WEB", "--json")
    assert [s["state"] for s in items(result.stdout)] == ["completed"]
    result = rhythm("sprint", "list", "-o", "acme", "-p", "WEB", "--state", "active")
    assert result.exit_code == 0 and "Sprint 1" not in result.stdout
    actors = tenant_rows(rhythm, "SELECT DISTINCT origin FROM changes WHERE entity = 'sprint'")
    assert actors == [("cli",)]


def test_sprint_errors_are_one_line(rhythm: Any) -> None:
    result = rhythm("sprint", "create", "Bad", "-o", "acme", "-p", "WEB", "--starts", "soon")
    assert result.exit_code == 1 and "starts_at" in result.output
    result = rhythm("sprint", "start", "Nope", "-o", "acme", "-p", "WEB")
    assert result.exit_code == 3 and "no sprint 'Nope'" in result.output
    rhythm("sprint", "create", "Undated", "-o", "acme", "-p", "WEB")
    result = rhythm("sprint", "start", "Undated", "-o", "acme", "-p", "WEB")
    assert result.exit_code == 1 and "required to start a sprint" in result.output
