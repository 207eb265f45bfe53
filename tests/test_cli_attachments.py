"""`rhythm issue attach|attachments` and `rhythm check` on a data directory."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli_world import ACME_SETUP, ANN, cli_on
from tracker.storage import blobs


def test_attach_list_download_and_check(tmp_path: Path) -> None:
    rhythm = cli_on(tmp_path / "data", ACME_SETUP)
    assert rhythm("issue", "create", "Crash", "-o", "acme", "-p", "WEB", "--as", ANN).exit_code == 0
    log = tmp_path / "crash.log"
    log.write_bytes(os.urandom(70_000))
    result = rhythm("issue", "attach", "WEB-1", str(log), "-o", "acme", "--as", ANN)
    assert result.exit_code == 0, result.output
    assert "crash.log" in result.output
    out = tmp_path / "out"
    result = rhythm("issue", "attachments", "WEB-1", "-o", "acme", "--as", ANN,
                    "--download", str(out), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    (saved,) = out.iterdir()
    assert saved.read_bytes() == log.read_bytes() and saved.name.endswith("crash.log")

    assert rhythm("check").exit_code == 0
    tenant = next(p for p in (tmp_path / "data").iterdir() if (p / "tracker.db").exists())
    spool = blobs.Spool(tenant)  # a crash between a file's rename and its row's commit
    spool.write(b"orphan")
    orphan = spool.keep()
    os.utime(blobs.blob_path(tenant, orphan), (0, 0))  # older than the repair grace
    result = rhythm("check")
    assert result.exit_code == 1 and "file without an attachment row" in result.output
    result = rhythm("check", "--repair")
    assert result.exit_code == 0, result.output
    assert not blobs.blob_path(tenant, orphan).exists()
    assert rhythm("check").exit_code == 0


def test_attach_refuses_a_missing_file(tmp_path: Path) -> None:
    rhythm = cli_on(tmp_path / "data", ACME_SETUP)
    rhythm("issue", "create", "Crash", "-o", "acme", "-p", "WEB", "--as", ANN)
    result = rhythm("issue", "attach", "WEB-1", str(tmp_path / "nope"), "-o", "acme", "--as", ANN)
    assert result.exit_code == 1 and "not a file" in result.output
