"""Offline attach: queued in the replica's outbox, uploaded by `rhythm sync` after the push."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData

from tests.conftest import Api
from tests.offline_world import Device, World


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    return found


def _file(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


async def _server_files(world: World, number: int) -> list[dict[str, Any]]:
    body = await world.call("GET", f"/orgs/acme/projects/WEB/issues/{number}/attachments",
                            world.ann)  # fmt: skip
    return body["items"]


async def _bytes(world: World, url: str) -> bytes:
    response = await world.client.get(url, headers=world.ann["headers"])
    assert response.status == 200
    return await response.read()


def _outbox(device: Device) -> list[Path]:
    assert device.replica_dir is not None
    folder = device.replica_dir / "outbox"
    return sorted(folder.iterdir()) if folder.exists() else []


def _queued(device: Device) -> list[Any]:
    replica = device.replica()
    try:
        rows = replica.journal.conn.execute("SELECT * FROM pending_uploads").fetchall()
        return [dict(r) for r in rows]
    finally:
        replica.close()


async def test_offline_attach_to_existing_and_new_issue_uploads_at_sync(
    world: World, tmp_path: Path
) -> None:
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Old"})
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    log = _file(tmp_path, "server.log", b"line one\nline two\n" * 5000)
    shot = _file(tmp_path, "shot.png", bytes(range(256)) * 300)
    attached = await bob.cli("issue", "attach", "WEB-1", str(log))
    assert attached.exit_code == 0, attached.output
    assert "queued server.log" in attached.output
    provisional = bob.create("WEB", "Made offline")
    attached = await bob.cli("issue", "attach", provisional, str(shot))
    assert attached.exit_code == 0, attached.output
    log.write_bytes(b"changed after attaching")  # the queued copy is what gets sent
    assert len(_outbox(bob)) == 2 and len(_queued(bob)) == 2
    listed = await bob.cli("issue", "attachments", "WEB-1")
    assert listed.exit_code == 0, listed.output
    assert "server.log" in listed.output and "pending upload" in listed.output
    assert await _server_files(world, 1) == []

    result = await bob.cli("sync")
    assert result.exit_code == 0, result.output
    assert "uploaded server.log" in result.output and "uploaded shot.png" in result.output
    assert "for WEB-2" in result.output  # the offline issue, by its real key
    assert _outbox(bob) == [] and _queued(bob) == []
    (on_old,) = await _server_files(world, 1)
    (on_new,) = await _server_files(world, 2)
    assert on_old["filename"] == "server.log" and on_new["filename"] == "shot.png"
    assert await _bytes(world, on_old["url"]) == b"line one\nline two\n" * 5000
    assert await _bytes(world, on_new["url"]) == bytes(range(256)) * 300
    again = await bob.cli("sync")  # nothing left to send: no second copy
    assert again.exit_code == 0 and "uploaded" not in again.output
    assert len(await _server_files(world, 1)) == 1


async def test_a_refused_upload_is_reported_and_kept(world: World, tmp_path: Path) -> None:
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Old"})
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    notes = _file(tmp_path, "notes.txt", b"my notes")
    assert (await bob.cli("issue", "attach", "WEB-1", str(notes))).exit_code == 0
    await world.call("PATCH", f"/orgs/acme/projects/WEB/members/{world.bob['id']}", world.ann,
                     json={"role": "viewer"})  # fmt: skip
    result = await bob.cli("sync")
    assert result.exit_code == 2, result.output
    assert "REFUSED upload notes.txt" in result.output and "[forbidden]" in result.output
    (kept,) = _outbox(bob)
    assert kept.read_bytes() == b"my notes"
    assert await _server_files(world, 1) == []
    shown = await bob.cli("sync", "--rejected")
    assert "notes.txt" in shown.output and str(kept) in shown.output
    as_json = json.loads((await bob.cli("sync", "--rejected", "--json")).output)
    assert as_json["uploads"][0]["problem"]["status"] == 403
    quiet = await bob.cli("sync")  # refused ones are not sent again by themselves
    assert quiet.exit_code == 0 and "REFUSED" not in quiet.output
    upload_id = as_json["uploads"][0]["id"]
    dropped = await bob.cli("sync", "--drop-upload", upload_id)
    assert dropped.exit_code == 0, dropped.output
    assert _outbox(bob) == [] and _queued(bob) == []


async def test_an_upload_stored_before_its_answer_was_lost_is_not_doubled(
    world: World, tmp_path: Path
) -> None:
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Old"})
    data = b"same bytes every time"
    for _ in range(2):  # the server keeps one row per upload (bytes stored once)
        form = FormData()
        form.add_field("file", io.BytesIO(data), filename="twice.txt")
        await world.call("POST", "/orgs/acme/projects/WEB/issues/1/attachments", world.bob,
                         data=form)  # fmt: skip
    assert len(await _server_files(world, 1)) == 2
    for item in await _server_files(world, 1):
        await world.call("DELETE", item["url"].removeprefix("/api/v1"), world.bob)

    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    path = _file(tmp_path, "twice.txt", data)
    assert (await bob.cli("issue", "attach", "WEB-1", str(path))).exit_code == 0
    # the first try reached the server, its answer never came back
    form = FormData()
    form.add_field("file", io.BytesIO(data), filename="twice.txt")
    await world.call("POST", "/orgs/acme/projects/WEB/issues/1/attachments", world.bob, data=form)
    replica = bob.replica()
    with replica.journal.transaction() as conn:
        conn.execute("UPDATE pending_uploads SET attempted = 1")
    replica.close()
    result = await bob.cli("sync")
    assert result.exit_code == 0, result.output
    assert "already had it" in result.output
    (only,) = await _server_files(world, 1)
    assert only["sha256"] == hashlib.sha256(data).hexdigest()
    assert _outbox(bob) == [] and _queued(bob) == []


async def test_an_upload_waits_while_its_issue_is_not_on_the_server(
    world: World, tmp_path: Path
) -> None:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    provisional = bob.create("WEB", "Offline")
    path = _file(tmp_path, "a.txt", b"abc")
    assert (await bob.cli("issue", "attach", provisional, str(path))).exit_code == 0
    pulled_only = await bob.cli("pull")  # no push: the upload is not tried
    assert pulled_only.exit_code == 0 and len(_queued(bob)) == 1
    replica = bob.replica()
    try:
        from tracker.replica import uploads
        from tracker.replica.engine import Report

        report = Report()
        await uploads.send(replica, None, report)  # type: ignore[arg-type]
    finally:
        replica.close()
    assert report.uploads[0]["status"] == "waiting" and len(_queued(bob)) == 1


async def test_recloning_carries_queued_uploads_over(world: World, tmp_path: Path) -> None:
    from tracker.replica import uploads
    from tracker.replica.store import Journal

    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Old"})
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    path = _file(tmp_path, "keep.bin", b"\x00\x01keep")
    assert (await bob.cli("issue", "attach", "WEB-1", str(path))).exit_code == 0
    assert bob.replica_dir is not None
    new = tmp_path / "new-replica"
    new.mkdir()
    Journal(new / "replica.db").close()
    assert uploads.carry_over(bob.replica_dir, new) == 1
    journal = Journal(new / "replica.db")
    try:
        (row,) = journal.conn.execute("SELECT * FROM pending_uploads").fetchall()
    finally:
        journal.close()
    assert (new / row["path"]).read_bytes() == b"\x00\x01keep"
    assert row["issue_key"] == "WEB-1" and row["filename"] == "keep.bin"


def test_an_old_replica_journal_gets_the_uploads_table(tmp_path: Path) -> None:
    import sqlite3

    from tracker.replica.store import SCHEMA, STEPS, Journal

    path = tmp_path / "replica.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA)  # a journal written before the steps existed
    old.execute("INSERT INTO meta (key, value) VALUES ('org', 'acme')")
    old.commit()
    old.close()
    journal = Journal(path)
    try:
        assert journal.conn.execute("PRAGMA user_version").fetchone()[0] == len(STEPS)
        assert journal.conn.execute("SELECT count(*) FROM pending_uploads").fetchone()[0] == 0
        assert journal.get("org") == "acme"
    finally:
        journal.close()
    Journal(path).close()  # opening again applies nothing twice


async def test_an_upload_to_an_issue_deleted_meanwhile_is_refused_and_kept(
    world: World, tmp_path: Path
) -> None:
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Old"})
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    path = _file(tmp_path, "late.txt", b"too late")
    assert (await bob.cli("issue", "attach", "WEB-1", str(path))).exit_code == 0
    await world.call("DELETE", "/orgs/acme/projects/WEB/issues/1", world.ann)
    result = await bob.cli("sync")
    assert result.exit_code == 2, result.output
    assert "REFUSED upload late.txt" in result.output and "File kept" in result.output
    (kept,) = _outbox(bob)
    assert kept.read_bytes() == b"too late" and _queued(bob)[0]["problem"]
