"""`rhythm backup` taken by the running server in page batches (the backup socket).

A real in-process server (pytest-aiohttp) serves the data dir and its backup socket;
the tests talk to the socket as the CLI does, with real files and real SQLite.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from cli.backup_client import via_server
from cli.context import EXIT_BUSY
from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services import online_backups
from tracker.settings import Settings
from tracker.storage.page_copy import PageCopy

PAD_ROWS = 12_000  # ~12 MB of tenant: ~3,000 pages, as many 1-page batches


@pytest.fixture(autouse=True)
def frequent_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """A progress line every 50 ms: the tests act on the first one of a tenant's copy."""
    monkeypatch.setattr(online_backups, "PROGRESS_EVERY_S", 0.05)


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def issue_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM issues")}


async def pad_tenant(world: World) -> None:
    """Make the tenant big enough that a backup in small batches takes many units."""
    core = world.client.app[CORE]

    def pad(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE bench_pad(id INTEGER PRIMARY KEY, pad BLOB)")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO bench_pad(pad) SELECT randomblob(900) FROM n",
            (PAD_ROWS,),
        )

    async with core.tenants.lease(world.org["id"]) as db:
        await db.write(pad)


async def events_of(
    settings: Settings, body: dict[str, Any], on_event: Any = None
) -> list[tuple[float, dict[str, Any]]]:
    """POST to the backup socket; every event line with when it arrived."""
    path = online_backups.socket_path(settings.data_dir)
    assert path.exists(), f"the server has no backup socket at {path}"
    connector = aiohttp.UnixConnector(path=str(path))
    got: list[tuple[float, dict[str, Any]]] = []
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post("http://rhythm/backup", json=body) as response,
    ):
        if response.status != 200:
            return [(time.monotonic(), {"status": response.status, **await response.json()})]
        async for raw in response.content:
            got.append((time.monotonic(), json.loads(raw)))
            if on_event is not None and await on_event(got[-1][1]) is False:
                break
    return got


async def test_socket_is_private_and_refuses_bad_requests(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    path = online_backups.socket_path(settings.data_dir)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    cases = [
        ({"dest": "relative/path"}, 400, "absolute"),
        ({"dest": str(tmp_path / "b"), "org": "nope"}, 404, "nope"),
        ({"dest": str(tmp_path / "b"), "batch_pages": 0}, 400, "batch_pages"),
        ({"dest": str(tmp_path / "b\x07")}, 400, "control"),
        ({"dest": str(tmp_path / "a-file" / "b")}, 400, "cannot write"),
    ]
    (tmp_path / "a-file").write_text("not a directory")
    for body, status, words in cases:
        ((_, answer),) = await events_of(settings, body)
        assert answer["status"] == status and words in answer["detail"], answer
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    ((_, answer),) = await events_of(settings, {"dest": str(tmp_path / "full")})
    assert answer["status"] == 409
    assert (await world.create(title="still serving"))["id"]


async def test_write_during_a_tenant_backup_completes_before_that_backup_ends(
    client: TestClient,
    api: Api,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(api, client)
    acked_before = [(await world.create(title=f"before {i}"))["id"] for i in range(5)]
    await pad_tenant(world)
    # A slow disk (0.3 ms per 1-page batch: ~1 s for the tenant), and units allowed to
    # run batches for 10 s: only yielding to the waiting write lets it through early.
    monkeypatch.setattr(online_backups, "UNIT_BUDGET_S", 10.0)
    step = PageCopy.step

    def slow_step(self: PageCopy, pages: int) -> bool:
        time.sleep(0.0003)
        return step(self, pages)

    monkeypatch.setattr(PageCopy, "step", slow_step)
    during: list[tuple[float, str]] = []  # (acknowledged at, issue id)

    async def write_soon() -> None:
        await asyncio.sleep(0.3)  # the tenant's copy (the first database) has begun
        issue = await world.create(title="written during the backup")
        during.append((time.monotonic(), issue["id"]))

    dest = tmp_path / "backup"
    asked_at = time.monotonic()
    writing = asyncio.create_task(write_soon())
    got = await events_of(settings, {"dest": str(dest), "batch_pages": 1})
    await writing
    (copied,) = [e for _, e in got if e["event"] == "copied" and e["db"] == world.org["slug"]]
    ((acked_at, during_id),) = during
    # the tenant's pages were copied from some time after `asked_at` for `copy_s`
    assert acked_at < asked_at + copied["copy_s"], "the write waited for the whole copy"
    assert got[-1][1]["event"] == "done", got[-1]
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest == got[-1][1]["manifest"]
    tenant = dest / world.org["id"] / "tracker.db"
    assert integrity(tenant) == "ok" and integrity(dest / "_system.db") == "ok"
    saved_ids = issue_ids(tenant)
    # every change acknowledged before the backup, and the one committed during the copy
    # (it went through the owning connection, so SQLite wrote it into the copy too)
    assert set(acked_before) | {during_id} <= saved_ids
    with sqlite3.connect(tenant) as conn:
        assert conn.execute("SELECT count(*) FROM bench_pad").fetchone()[0] == PAD_ROWS
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert not list(dest.rglob("*.partial"))


@pytest.fixture
def one_batch_per_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slower copy: one batch per unit, so the test can act while it runs."""
    monkeypatch.setattr(online_backups, "UNIT_BUDGET_S", 0.0)


@pytest.mark.usefixtures("one_batch_per_unit")
async def test_a_client_that_disconnects_stops_its_backup(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    await pad_tenant(world)
    dest = tmp_path / "backup"

    async def hang_up(event: dict[str, Any]) -> bool:
        return event["event"] != "copying"  # False: stop reading, close the connection

    got = await events_of(settings, {"dest": str(dest), "batch_pages": 1}, hang_up)
    assert got[-1][1]["event"] == "copying"
    for _ in range(100):  # the server notices, cancels, and cleans up
        if not list(dest.rglob("*.partial")):
            break
        await asyncio.sleep(0.05)
    assert not list(dest.rglob("*.partial"))
    assert not (dest / "manifest.json").exists()
    assert (await world.create(title="still serving"))["id"]
    again = await events_of(settings, {"dest": str(tmp_path / "again")})
    assert again[-1][1]["event"] == "done"  # the one-backup-at-a-time lock was let go


@pytest.mark.usefixtures("one_batch_per_unit")
async def test_a_failing_copy_leaves_no_manifest_and_the_server_serves(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    await pad_tenant(world)
    dest = tmp_path / "backup"

    async def block_the_rename(event: dict[str, Any]) -> None:
        if event["event"] == "copying":  # a directory where the copy must be renamed to
            (dest / world.org["id"] / "tracker.db").mkdir(exist_ok=True)

    got = await events_of(settings, {"dest": str(dest), "batch_pages": 1}, block_the_rename)
    last = got[-1][1]
    assert last["event"] == "error" and last["status"] == 500, last
    assert not (dest / "manifest.json").exists()
    assert not list(dest.rglob("*.partial"))
    assert (await world.create(title="still serving"))["id"]


async def rhythm(*args: str) -> tuple[int, str, str]:
    """The real CLI in its own process: (exit code, stdout, stderr)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import run; run()", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await child.communicate()
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


async def test_cli_goes_through_the_server_and_falls_back_without_its_socket(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    await world.create(title="x")
    data = str(settings.data_dir)
    code, out, err = await rhythm("backup", str(tmp_path / "b"), "--data-dir", data)
    assert code == 0 and "by the server" in out, (out, err)
    assert integrity(tmp_path / "b" / world.org["id"] / "tracker.db") == "ok"
    code, out, err = await rhythm(
        "backup", str(tmp_path / "c"), "--org", "nope", "--data-dir", data
    )
    assert code == 3 and "nope" in err  # the server's refusal, with the CLI's exit code
    # A socket gone while the server runs: the snapshot cannot read the tenant the server
    # holds (it answered a request: open, held exclusively) and says why, in seconds.
    online_backups.socket_path(settings.data_dir).unlink()
    started = time.monotonic()
    code, out, err = await rhythm("backup", str(tmp_path / "d"), "--data-dir", data)
    assert code == EXIT_BUSY and "held by another process" in err, (out, err)
    assert time.monotonic() - started < 30
    assert not list((tmp_path / "d").rglob("*.partial"))


async def test_without_held_tenants_the_cli_falls_back_to_snapshots(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """RHYTHM_EXCLUSIVE_TENANTS=false: with no socket answering, the CLI copies the live
    files itself, the open tenant included."""
    settings = make_settings(tmp_path / "data", exclusive_tenants=False)
    client = await aiohttp_client(create_app(settings))
    world = await make_world(Api(client), client)
    await world.create(title="x")
    assert not client.app[CORE].tenants.exclusive
    online_backups.socket_path(settings.data_dir).unlink()  # as if the server had none
    data = str(settings.data_dir)
    code, out, err = await rhythm("backup", str(tmp_path / "d"), "--data-dir", data)
    assert code == 0 and "by the server" not in out, (out, err)
    assert f"a server (pid {os.getpid()})" in err and "read-only snapshots" in err
    assert integrity(tmp_path / "d" / world.org["id"] / "tracker.db") == "ok"


def test_no_server_means_the_fallback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # a socket file left by a server that died: nobody listens on it
    import socket

    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(online_backups.socket_path(data)))
    stale.close()
    assert via_server(data, tmp_path / "b", None) is None
    assert "note:" not in capsys.readouterr().err  # no server runs: nothing to say
    (data / ".rhythm.lock").write_text(str(os.getppid()))  # a live process "holds" it
    assert via_server(data, tmp_path / "b", None) is None
    assert "did not answer" in capsys.readouterr().err


def test_the_backup_thread_yields_the_cpu_to_the_server_threads() -> None:
    """The backup's own thread (quick_check, SHA-256 of the copy) runs at a lower CPU
    priority; the thread that starts it, like every server thread, keeps its own."""
    import os
    import sys
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tracker.services.online_backups import BACKGROUND_NICE, yield_the_cpu

    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread nice values are Linux's")
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with ThreadPoolExecutor(1, initializer=yield_the_cpu) as worker:
        theirs = worker.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        assert theirs.result() == max(mine, BACKGROUND_NICE)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


async def test_cli_org_export_goes_through_the_server(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    """`rhythm org export` beside a running server takes the server's page copy; with no
    socket it reads a snapshot instead: refused while the server holds the tenant open,
    taken once it does not, and the export still holds the data."""
    world = await make_world(api, client)
    await world.create(title="exported by the server")
    data, slug = str(settings.data_dir), world.org["slug"]

    async def export(file: Path) -> tuple[int, str, str]:
        file.parent.mkdir(exist_ok=True)
        return await rhythm("org", "export", slug, str(file), "--data-dir", data)

    code, out, err = await export(tmp_path / "a" / "org.tar")
    assert code == 0 and "(copied by the running server)" in out, (out, err)
    online_backups.socket_path(settings.data_dir).unlink()  # as if the server had none
    code, out, err = await export(tmp_path / "b" / "org.tar")
    assert code == EXIT_BUSY and "held by another process" in err, (out, err)
    await client.app[CORE].tenants.forget(world.org["id"])  # closed: nobody holds it
    code, out, err = await export(tmp_path / "c" / "org.tar")
    assert code == 0 and "copied by the running server" not in out, (out, err)
    for folder in ("a", "c"):
        with tarfile.open(tmp_path / folder / "org.tar") as tar:
            tar.extract("tracker.db", tmp_path / folder, filter="data")
        with sqlite3.connect(tmp_path / folder / "tracker.db") as conn:
            titles = [r[0] for r in conn.execute("SELECT title FROM issues")]
        assert "exported by the server" in titles, folder
