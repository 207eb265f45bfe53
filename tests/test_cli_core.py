"""The `rhythm` command's own commands: version, user create, migrate, serve errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tracker import __version__

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
CHEAP = {"RHYTHM_ARGON2_TIME_COST": "1", "RHYTHM_ARGON2_MEMORY_KIB": "8192"}


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"rhythm {__version__}"


def test_user_create_then_duplicate(tmp_path: Path) -> None:
    args = ["user", "create", "ann@example.com", "--data-dir", str(tmp_path), "--name", "Ann"]
    result = runner.invoke(app, args, input="long password\nlong password\n", env=CHEAP)
    assert result.exit_code == 0, result.output
    assert "created user Ann <ann@example.com>" in result.output
    assert (tmp_path / "_system.db").is_file()
    again = runner.invoke(app, args, input="long password\nlong password\n", env=CHEAP)
    assert again.exit_code == 4  # conflict
    assert "already exists" in again.output


def test_user_create_rejects_a_short_password(tmp_path: Path) -> None:
    args = ["user", "create", "bob@example.com", "--data-dir", str(tmp_path), "--password", "short"]
    result = runner.invoke(app, args, env=CHEAP)
    assert result.exit_code == 1
    assert "password" in result.output


def test_migrate_on_a_fresh_data_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["migrate", "--data-dir", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_bad_data_dir_is_a_clear_message(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = runner.invoke(app, ["migrate", "--data-dir", str(not_a_dir)])
    assert result.exit_code == 1
    assert result.output.startswith("error:")
    assert "Traceback" not in result.output


def test_serve_on_a_port_in_use_is_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port),
             "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
    assert result.returncode == 1
    assert "cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr


def test_wheel_ships_the_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    wheel = next(tmp_path.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tracker/_migrations/tenant/0001_initial.sql" in names
    assert "tracker/_migrations/system/0001_initial.sql" in names
    assert any(name.startswith("cli/") for name in names)
