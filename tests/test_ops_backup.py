"""`rhythm backup` / `rhythm restore`: online while 20 writers run, verified, restored."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from cli.backup_client import via_server
from tests.cli_world import ACME_SETUP, ANN, cli_on
from tests.conftest import Api, make_settings
from tests.issues_world import make_world
from tests.test_http_attachments import upload
from tracker.core import open_core
from tracker.errors import BadRequest, Conflict, DataDirError
from tracker.services import backups
from tracker.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The server shares its tenants' files: these tests take snapshots of live files
    in-process, beside it (with held tenants that is refused: test_ops_backup_online.py)."""
    return make_settings(tmp_path / "data", exclusive_tenants=False)


TABLES = ("issues", "comments", "changes", "attachments", "projects", "stage_counts")


def rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def epoch(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("SELECT epoch FROM sync_state").fetchone()[0])


async def test_backup_while_20_writers_run_then_restore(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    first = await world.create(title="before everything")
    (attached,) = await upload(world, first["number"], ("log.txt", b"a log line\n" * 100))
    acked: list[str] = []
    stop = asyncio.Event()

    async def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            issue = await world.create(title=f"writer {n} issue {i}")
            acked.append(issue["id"])
            if i % 3 == 0:
                status, _ = await world.call(
                    "POST", world.url(f"/issues/{issue['number']}/comments"), json={"body": "hi"}
                )
                assert status == 201
            i += 1

    tasks = [asyncio.create_task(writer(n)) for n in range(20)]
    while len(acked) < 40:
        await asyncio.sleep(0.02)
    before = set(acked)  # acknowledged before the backup starts
    dest = tmp_path / "backup"
    # as `rhythm backup` does: the running server takes it, in page batches (small ones
    # here, so the writers interleave with many of them)
    done = await asyncio.to_thread(via_server, settings.data_dir, dest, None, 4)
    assert done is not None, "the backup did not go through the server"
    after_count = len(acked)
    stop.set()
    await asyncio.gather(*tasks)
    assert after_count > len(before), "the writers kept writing during the backup"

    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest == done["manifest"] and manifest["missing_files"] == []
    (entry,) = manifest["orgs"]
    assert entry["id"] == world.org["id"] and entry["slug"] == world.org["slug"]
    assert entry["files"] == 1 and entry["seq"] > 0 and entry["schema_version"] >= 14
    tenant = dest / world.org["id"] / "tracker.db"
    assert integrity(tenant) == "ok" and integrity(dest / "_system.db") == "ok"
    with sqlite3.connect(tenant) as conn:
        saved = {r[0] for r in conn.execute("SELECT id FROM issues")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert before | {first["id"]} <= saved
    for rel, check in manifest["checksums"].items():
        assert (dest / rel).stat().st_size == check["size"]
    sha = attached["sha256"]
    assert (
        dest / world.org["id"] / "files" / sha[:2] / sha[2:]
    ).read_bytes() == b"a log line\n" * 100

    # Restore onto the running server's data dir: refused (it holds the lock).
    with pytest.raises(DataDirError):
        await asyncio.to_thread(backups.restore, settings, dest, replace=True)

    # Restore into another data dir: the server starts there with the backup's data.
    target = make_settings(tmp_path / "restored")
    done = await asyncio.to_thread(backups.restore, target, dest)
    restored = target.data_dir / world.org["id"] / "tracker.db"
    assert done["epochs"][world.org["id"]] == epoch(restored) != entry["epoch"]
    for table in TABLES:
        assert rows(restored, table) == rows(tenant, table), table
    async with open_core(target, background=False) as core:
        async with core.tenants.lease(world.org["id"]) as db:
            count = await db.read(lambda c: c.execute("SELECT count(*) FROM issues").fetchone()[0])
        assert count == len(saved)
    app_client = await _client_on(target)
    try:
        api2 = Api(app_client)
        login = await app_client.post(
            "/api/v1/auth/login",
            json={"email": world.owner["email"], "password": world.owner["password"]},
        )
        assert login.status == 200
        token = (await login.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        got = await app_client.get(world.url(f"/attachments/{attached['id']}"), headers=headers)
        assert got.status == 200 and await got.read() == b"a log line\n" * 100
        del api2
    finally:
        await app_client.close()

    # Restoring again over that data: refused without --replace, then moved aside with it.
    with pytest.raises(Conflict):
        await asyncio.to_thread(backups.restore, target, dest)
    again = await asyncio.to_thread(backups.restore, target, dest, replace=True)
    assert again["moved_aside"] and Path(again["moved_aside"]).is_dir()
    assert epoch(restored) != done["epochs"][world.org["id"]]


async def _client_on(settings: Settings) -> TestClient:
    from aiohttp.test_utils import TestServer

    from tracker.http.app import create_app

    app_client = TestClient(TestServer(create_app(settings)))
    await app_client.start_server()
    return app_client


async def test_restore_refuses_a_tampered_backup(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    await world.create(title="x")
    dest = tmp_path / "backup"
    await asyncio.to_thread(backups.backup, settings, dest, world.org["slug"])
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["scope"] == "org"
    tenant = dest / world.org["id"] / "tracker.db"
    with open(tenant, "r+b") as file:  # one flipped byte deep in the file
        file.seek(tenant.stat().st_size - 100)
        byte = file.read(1)
        file.seek(-1, 1)
        file.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BadRequest, match="checksum mismatch"):
        await asyncio.to_thread(backups.restore, make_settings(tmp_path / "other"), dest)
    manifest["checksums"]["../escape"] = {"sha256": "0" * 64, "size": 1}
    (dest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BadRequest):
        await asyncio.to_thread(backups.restore, make_settings(tmp_path / "other"), dest)


def test_cli_backup_and_restore(tmp_path: Path) -> None:
    rhythm = cli_on(tmp_path / "data", ACME_SETUP)
    assert rhythm("issue", "create", "Hello", "-o", "acme", "-p", "WEB", "--as", ANN).exit_code == 0
    result = rhythm("backup", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert "1 organization(s)" in result.output
    assert rhythm("backup", str(tmp_path / "b")).exit_code != 0  # not an empty directory
    again = cli_on(tmp_path / "fresh")
    result = again("restore", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    result = again("issue", "list", "-o", "acme", "-p", "WEB", "--as", ANN)
    assert result.exit_code == 0 and "Hello" in result.output
    result = again("restore", str(tmp_path / "b"))
    assert result.exit_code == 4 and "--replace" in result.output
