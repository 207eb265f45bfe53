"""`rhythm check` finds a wrong board count and a stale search entry, names them,
and `--repair` fixes both."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.cli_world import ACME_SETUP, ANN, cli_on


def tenant_db(data_dir: Path) -> Path:
    (db,) = data_dir.glob("*/tracker.db")
    return db


def test_check_names_broken_counts_and_search_entries_and_repairs_them(tmp_path: Path) -> None:
    rhythm = cli_on(tmp_path / "data", ACME_SETUP)
    for title in ("Kettle leaks", "Toaster burns", "Fridge hums"):
        result = rhythm("issue", "create", title, "-o", "acme", "-p", "WEB", "--as", ANN)
        assert result.exit_code == 0, result.output
    result = rhythm("check")
    assert result.exit_code == 0 and result.output.strip() == "ok", result.output

    with sqlite3.connect(tenant_db(tmp_path / "data")) as conn:
        # a board counter off by five, and an issue whose text changed behind the index
        conn.execute(
            "UPDATE stage_counts SET live = live + 5 WHERE stage_id = "
            "(SELECT stage_id FROM issues WHERE number = 1)"
        )
        conn.execute("UPDATE issues SET title = 'Teapot whistles' WHERE number = 2")
        (stage,) = conn.execute(
            "SELECT s.name FROM stages s JOIN issues i ON i.stage_id = s.id WHERE i.number = 1"
        ).fetchone()
    result = rhythm("check")
    assert result.exit_code == 1, result.output
    assert f"acme: board count wrong: WEB/{stage}: counted 8, actually 3" in result.output
    assert "acme: search index entry of WEB-2 differs from the issue" in result.output
    assert "WEB-1" not in result.output and "WEB-3" not in result.output

    result = rhythm("check", "--repair")
    assert result.exit_code == 0 and "(repaired)" in result.output, result.output
    result = rhythm("check")
    assert result.exit_code == 0 and result.output.strip() == "ok", result.output
    found = rhythm("issue", "search", "teapot", "-o", "acme", "-p", "WEB", "--as", ANN, "--json")
    assert found.exit_code == 0 and "WEB-2" in found.output, found.output


def test_check_names_an_index_entry_with_wrong_text(tmp_path: Path) -> None:
    rhythm = cli_on(tmp_path / "data", ACME_SETUP)
    result = rhythm("issue", "create", "Kettle leaks", "-o", "acme", "-p", "WEB", "--as", ANN)
    assert result.exit_code == 0
    cols = "title, description, comments, title_cjk, description_cjk, comments_cjk"
    with sqlite3.connect(tenant_db(tmp_path / "data")) as conn:
        (row_id,) = conn.execute("SELECT row_id FROM issues WHERE number = 1").fetchone()
        conn.execute(
            f"INSERT INTO issue_search (issue_search, rowid, {cols}) "
            f"SELECT 'delete', row_id, {cols} FROM issue_search_source WHERE row_id = ?",
            (row_id,),
        )
        conn.execute(
            f"INSERT INTO issue_search (rowid, {cols}) VALUES (?, 'garbage', '', '', '', '', '')",
            (row_id,),
        )
    result = rhythm("check")
    assert result.exit_code == 1
    assert "search index entry of WEB-1 differs from the issue" in result.output
    assert rhythm("check", "--repair").exit_code == 0
    assert rhythm("check").exit_code == 0
