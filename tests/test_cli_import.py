"""`rhythm issue import FILE`: JSON Lines through the bulk path, all validated before any write."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import ACME_SETUP, ANN, PASSWORD_INPUT, Rhythm, cli_on, tenant_rows

BOB = "bob@example.com"


@pytest.fixture
def rhythm(tmp_path: Path) -> Rhythm:
    return cli_on(tmp_path / "data", [*ACME_SETUP, ("user", "create", BOB)])


def user_id(rhythm: Rhythm, email: str) -> str:
    with sqlite3.connect(Path(rhythm.data_dir) / "_system.db") as conn:  # type: ignore[attr-defined]
        return str(conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()[0])


def write_lines(tmp_path: Path, records: list[Any], name: str = "issues.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def run_import(rhythm: Rhythm, path: Path, *extra: str) -> Any:
    return rhythm("issue", "import", str(path), "-o", "acme", "-p", "WEB", "--as", ANN, *extra)


def test_imports_issues_with_comments_people_and_times(rhythm: Rhythm, tmp_path: Path) -> None:
    path = write_lines(tmp_path, [
        {"title": "Login fails", "description": "on iOS", "type": "bug", "priority": "major",
         "status": "In Progress", "reporter": BOB.upper(),
         "created_at": "2024-03-01T10:30:00+01:00",
         "comments": [{"body": "later", "author": ANN, "created_at": "2024-03-03T00:00:00Z"},
                      {"body": "first", "author": BOB, "created_at": "2024-03-02T00:00:00Z"}]},
        "",  # blank lines are skipped
        {"title": "Old and done", "status": "resolved", "created_at": "2023-01-01T00:00:00Z",
         "updated_at": "2023-02-01T00:00:00Z"},
        {"title": "Defaults"},
    ])  # fmt: skip
    result = run_import(rhythm, path)
    assert result.exit_code == 0, result.output
    assert "imported 3 issues and 2 comments into WEB" in result.output
    assert "3 issues imported" in result.output  # the progress line (stderr)
    issues = tenant_rows(
        rhythm,
        "SELECT i.number, i.title, i.type, i.priority, s.name, i.reporter, i.created_at, "
        "i.updated_at, i.resolved_at FROM issues i JOIN stages s ON s.id = i.stage_id "
        "ORDER BY number",
    )
    ann_id, bob_id = user_id(rhythm, ANN), user_id(rhythm, BOB)
    login, done, defaults = issues
    assert login[:5] == (1, "Login fails", "bug", "major", "In Progress")
    assert login[6:] == ("2024-03-01T09:30:00.000Z", "2024-03-01T09:30:00.000Z", None)
    assert done[4:] == ("Resolved", ann_id, "2023-01-01T00:00:00.000Z",
                        "2023-02-01T00:00:00.000Z", "2023-02-01T00:00:00.000Z")  # fmt: skip
    assert defaults[2:5] == ("task", "normal", "Open") and defaults[5] == ann_id
    assert login[5] == bob_id
    comments = tenant_rows(rhythm, "SELECT body, author FROM comments ORDER BY created_at")
    assert comments == [("first", bob_id), ("later", ann_id)]
    # every row went through the change log, with the CLI as origin
    logged = tenant_rows(
        rhythm,
        "SELECT entity, origin, actor, count(*) FROM changes "
        "WHERE entity IN ('issue', 'comment') GROUP BY entity",
    )
    assert logged == [("comment", "cli", ann_id, 2), ("issue", "cli", ann_id, 3)]
    found = rhythm("issue", "search", "login", "-o", "acme", "-p", "WEB", "--as", ANN, "--json")
    assert found.exit_code == 0 and '"WEB-1"' in found.output


def test_a_bad_line_imports_nothing_and_names_each_fault(rhythm: Rhythm, tmp_path: Path) -> None:
    path = write_lines(tmp_path, [
        {"title": "fine"},
        {"title": ""},
        '{"title": "broken json"',
        {"title": "x", "priority": "urgent", "created_at": "yesterday"},
        {"title": "x", "status": "Nowhere"},
        {"title": "x", "surprise": 1},
        {"title": "x", "comments": [{"body": "   "}]},
        '{"title": "lone \\ud800 surrogate"}',
    ])  # fmt: skip
    result = run_import(rhythm, path)
    assert result.exit_code == 1
    for expected in ("line 2: title", "line 3:", "line 4: priority", "line 4: created_at",
                     "line 5: status", "no stage named 'Nowhere'", "line 6: surprise",
                     "line 7: comments.0.body", "line 8:"):  # fmt: skip
        assert expected in result.output, (expected, result.output)
    assert "error: line 1:" not in result.output
    assert tenant_rows(rhythm, "SELECT count(*) FROM issues") == [(0,)]
    assert tenant_rows(rhythm, "SELECT next_number FROM projects") == [(1,)]


def test_unknown_people_are_refused_or_mapped_to_the_importer(
    rhythm: Rhythm, tmp_path: Path
) -> None:
    path = write_lines(tmp_path, [
        {"title": "a", "reporter": "ghost@example.com",
         "comments": [{"body": "boo", "author": "other@example.com"}]},
    ])  # fmt: skip
    refused = run_import(rhythm, path)
    assert refused.exit_code == 1
    assert "ghost@example.com" in refused.output and "other@example.com" in refused.output
    assert "--unknown-users-as-me" in refused.output
    assert tenant_rows(rhythm, "SELECT count(*) FROM issues") == [(0,)]
    mapped = run_import(rhythm, path, "--unknown-users-as-me")
    assert mapped.exit_code == 0, mapped.output
    ann_id = user_id(rhythm, ANN)
    assert tenant_rows(rhythm, "SELECT reporter FROM issues") == [(ann_id,)]
    assert tenant_rows(rhythm, "SELECT author FROM comments") == [(ann_id,)]


def test_import_needs_a_user_a_known_project_and_utf8(rhythm: Rhythm, tmp_path: Path) -> None:
    path = write_lines(tmp_path, [{"title": "a"}])
    anonymous = rhythm("issue", "import", str(path), "-o", "acme", "-p", "WEB")
    assert anonymous.exit_code == 1 and "--as" in anonymous.output
    unknown = rhythm("issue", "import", str(path), "-o", "acme", "-p", "NOPE", "--as", ANN)
    assert unknown.exit_code == 3 and "project not found" in unknown.output
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"title": "caf\xe9"}\n'.encode("latin-1"))
    garbled = run_import(rhythm, latin1)
    assert garbled.exit_code == 1 and "UTF-8" in garbled.output
    assert tenant_rows(rhythm, "SELECT count(*) FROM issues") == [(0,)]


def test_a_second_import_continues_the_numbering(rhythm: Rhythm, tmp_path: Path) -> None:
    created = rhythm("issue", "create", "by hand", "-o", "acme", "-p", "WEB", "--as", ANN)
    assert created.exit_code == 0, created.output
    path = write_lines(tmp_path, [{"title": f"imported {n}"} for n in range(3)])
    assert run_import(rhythm, path).exit_code == 0
    rows = tenant_rows(rhythm, "SELECT number, title FROM issues ORDER BY number")
    assert rows == [(1, "by hand"), (2, "imported 0"), (3, "imported 1"), (4, "imported 2")]


__all__ = ["PASSWORD_INPUT"]
