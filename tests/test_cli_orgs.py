"""`rhythm org|project|member` on a data directory, through typer's CliRunner."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.cli_world import cli_on, items


@pytest.fixture
def rhythm(tmp_path: Path) -> Any:
    """Run `rhythm ... --data-dir <tmp>`; returns the Result (exit code, stdout, stderr)."""
    return cli_on(tmp_path / "data")


def user(rhythm: Any, email: str) -> None:
    result = rhythm("user", "create", email, input="long enough pw\nlong enough pw\n")
    assert result.exit_code == 0, result.output


def tenant_changes(db: Path, entity: str) -> list[tuple[str, str | None, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT op, actor, origin FROM changes WHERE entity = ? ORDER BY seq", (entity,)
        ).fetchall()
    return [tuple(row) for row in rows]


def test_org_project_member_round_trip(rhythm: Any) -> None:
    user(rhythm, "ann@example.com")
    user(rhythm, "bob@example.com")
    result = rhythm("org", "create", "Acme Inc", "--as", "ann@example.com", "--json")
    assert result.exit_code == 0, result.output
    org = json.loads(result.stdout)
    assert org["slug"] == "acme-inc" and org["role"] == "owner"
    assert (rhythm.data_dir / org["id"] / "tracker.db").is_file()
    result = rhythm("project", "create", "acme-inc", "web", "Website", "--private",
                    "--as", "ann@example.com", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["key"] == "WEB"
    assert rhythm("member", "add", "acme-inc", "bob@example.com").exit_code == 0
    result = rhythm("project", "list", "acme-inc", "--as", "bob@example.com", "--json")
    assert items(result.stdout) == []  # private, and bob is only an org member
    result = rhythm("member", "add", "acme-inc", "bob@example.com", "-p", "WEB",
                    "--role", "developer")  # fmt: skip
    assert result.exit_code == 0, result.output
    result = rhythm("project", "list", "acme-inc", "--as", "bob@example.com", "--json")
    assert [(p["key"], p["role"]) for p in items(result.stdout)] == [("WEB", "developer")]
    result = rhythm("member", "list", "acme-inc", "--json")
    assert [(m["email"], m["role"]) for m in items(result.stdout)] == [
        ("ann@example.com", "owner"), ("bob@example.com", "member"),
    ]  # fmt: skip
    assert "bob@example.com" in rhythm("member", "list", "acme-inc", "-p", "WEB").stdout
    assert rhythm("member", "remove", "acme-inc", "bob@example.com").exit_code == 0
    result = rhythm("member", "list", "acme-inc", "-p", "WEB", "--json")
    assert items(result.stdout) == []
    db = rhythm.data_dir / org["id"] / "tracker.db"
    assert tenant_changes(db, "project_member") == [("create", None, "cli"),
                                                     ("delete", None, "cli")]  # fmt: skip
    ann_id = tenant_changes(db, "org")[0][1]
    assert tenant_changes(db, "org") == [("create", ann_id, "cli")] and ann_id


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [(("org", "create", "X", "--as", "nobody@example.com"), "no user", 3),
     (("org", "create", "X", "--slug", "Bad Slug", "--as", "ann@example.com"), "slug", 1),
     (("org", "create", "Dup", "--slug", "acme", "--as", "ann@example.com"), "taken", 4),
     (("project", "create", "acme", "1X", "Bad"), "key", 1),
     (("project", "create", "nope", "WEB", "Web"), "organization not found", 3),
     (("member", "add", "acme", "ghost@example.com"), "no such user", 1),
     (("member", "add", "acme", "ann@example.com", "--role", "boss"), "role", 1),
     (("member", "remove", "acme", "ann@example.com"), "owner", 4),
     (("org", "restore", "never-archived"), "no archived organization", 3)],
)  # fmt: skip
def test_cli_errors_are_one_line_with_their_exit_code(
    rhythm: Any, args: tuple, message: str, code: int
) -> None:
    user(rhythm, "ann@example.com")
    assert rhythm("org", "create", "acme", "--as", "ann@example.com").exit_code == 0
    result = rhythm(*args)
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error:") and message in result.stderr


def test_archive_and_restore(rhythm: Any) -> None:
    user(rhythm, "ann@example.com")
    org = json.loads(rhythm("org", "create", "acme", "--as", "ann@example.com", "--json").stdout)
    assert rhythm("project", "create", "acme", "WEB", "Website").exit_code == 0
    result = rhythm("org", "archive", "acme", "--as", "ann@example.com")
    assert result.exit_code == 0, result.output
    assert not (rhythm.data_dir / org["id"]).exists()
    [archived] = items(rhythm("org", "list", "--archived", "--json").stdout)
    folder = rhythm.data_dir / archived["archive_path"]
    assert folder.parent.name == ".archive" and (folder / "tracker.db").is_file()
    assert items(rhythm("org", "list", "--json").stdout) == []
    # the slug is free again: a new org takes it, so the old one needs another slug
    assert rhythm("org", "create", "acme", "--as", "ann@example.com").exit_code == 0
    result = rhythm("org", "restore", folder.name)
    assert result.exit_code == 4 and "taken" in result.stderr
    assert folder.is_dir()  # a failed restore leaves the archive where it was
    result = rhythm("org", "restore", folder.name, "--slug", "acme-old", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["id"] == org["id"]
    assert not folder.exists()
    result = rhythm("project", "list", "acme-old", "--json")
    assert [p["key"] for p in items(result.stdout)] == ["WEB"]
    ops = [op for op, _, _ in tenant_changes(rhythm.data_dir / org["id"] / "tracker.db", "org")]
    assert ops == ["create", "delete", "restore"]
    slugs = {o["slug"] for o in items(rhythm("org", "list", "--json").stdout)}
    assert slugs == {"acme", "acme-old"}
