"""Attachments over HTTP: upload, list, download byte for byte, serve safely, delete, check."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from PIL import Image

from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services.attachments import check_files
from tracker.storage import blobs

PNG_1x1 = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x9a\xa0"
    b"\xd8\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


def form(*files: tuple[str, bytes], content_type: str = "application/octet-stream") -> FormData:
    data = FormData()
    for name, content in files:
        data.add_field("file", io.BytesIO(content), filename=name, content_type=content_type)
    return data


async def upload(world: World, number: int, *files: tuple[str, bytes], who: Any = None) -> Any:
    status, body = await world.call(
        "POST", world.url(f"/issues/{number}/attachments"), who, data=form(*files)
    )
    assert status == 201, body
    return body["items"]


def files_dir(world: World) -> Path:
    core = world.client.app[CORE]
    return blobs.files_dir(core.tenants.tenant_path(world.org["id"]).parent)


def stored_files(world: World) -> list[Path]:
    root = files_dir(world)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_upload_list_download_delete_history(world: World) -> None:
    issue = await world.create(title="Crash")
    log = os.urandom(300_000)
    first, second = await upload(world, 1, ("crash.log", log), ("shot.png", PNG_1x1))
    assert first["filename"] == "crash.log" and first["size"] == len(log)
    assert first["sha256"] == hashlib.sha256(log).hexdigest()
    assert first["content_type"] == "application/octet-stream"
    assert second["content_type"] == "image/png" and second["thumbnail_url"]
    assert first["issue"] == issue["key"] and first["uploaded_by"] == world.owner["id"]

    status, listed = await world.call("GET", world.url("/issues/1/attachments"))
    assert status == 200 and [a["id"] for a in listed["items"]] == [first["id"], second["id"]]

    response = await world.client.get(first["url"], headers=world.owner["headers"])
    assert response.status == 200 and await response.read() == log
    assert response.headers["Content-Disposition"].startswith("attachment;")
    response = await world.client.get(
        first["url"], headers={**world.owner["headers"], "Range": "bytes=10-19"}
    )
    assert response.status == 206 and await response.read() == log[10:20]

    status, _ = await world.call("DELETE", first["url"])
    assert status == 204
    status, listed = await world.call("GET", world.url("/issues/1/attachments"))
    assert [a["id"] for a in listed["items"]] == [second["id"]]
    status, _ = await world.call("GET", first["url"])
    assert status == 404
    history = [(c["entity"], c["op"]) for c in await world.changes("attachment")]
    assert history == [("attachment", "create"), ("attachment", "create"),
                       ("attachment", "delete")]  # fmt: skip
    status, page = await world.call("GET", world.url("/issues/1/history"))
    assert {"attachment"} <= {item["entity"] for item in page["items"]}


async def test_the_same_bytes_are_stored_once(world: World) -> None:
    await world.create()
    await upload(world, 1, ("a.txt", b"same bytes"))
    await upload(world, 1, ("b.txt", b"same bytes"))
    assert len(stored_files(world)) == 1


async def test_too_large_is_413_and_leaves_nothing(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, max_attachment_mb=1)))
    world = await make_world(Api(client), client)
    await world.create()
    status, body = await world.call(
        "POST", world.url("/issues/1/attachments"), data=form(("big.bin", b"x" * (2 * 1024 * 1024)))
    )
    assert status == 413, body
    assert stored_files(world) == []  # no file, no spool left behind
    assert await world.count("attachments") == 0


async def test_org_quota_is_507(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path, org_quota_mb=1)))
    world = await make_world(Api(client), client)
    await world.create()
    await upload(world, 1, ("a.bin", os.urandom(700_000)))
    status, body = await world.call(
        "POST", world.url("/issues/1/attachments"), data=form(("b.bin", os.urandom(700_000)))
    )
    assert status == 507 and body["type"].endswith("quota-exceeded")
    assert await world.count("attachments") == 1


@pytest.mark.parametrize(
    ("name", "content", "sniffed"),
    [
        ("page.html", b"<!DOCTYPE html><script>alert(1)</script>", "text/html"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
         "image/svg+xml"),
        ("image.html", PNG_1x1, "image/png"),
        ("../../x", b"plain text", "text/plain"),
        ("con.txt", b"plain", "text/plain"),
        ("é" * 300 + ".txt", b"long name", "text/plain"),
    ],
)  # fmt: skip
async def test_hostile_files_are_stored_safely_and_served_as_downloads(
    world: World, name: str, content: bytes, sniffed: str
) -> None:
    await world.create()
    (item,) = await upload(world, 1, (name, content))
    assert item["content_type"] == sniffed
    assert "/" not in item["filename"] and len(item["filename"]) <= 200
    root = files_dir(world).resolve()
    assert all(root in p.resolve().parents for p in stored_files(world))
    response = await world.client.get(item["url"], headers=world.owner["headers"])
    assert response.status == 200 and await response.read() == content
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Type"].startswith(sniffed)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("inline;" if sniffed == "image/png" else "attachment;")


async def test_thumbnail_and_a_decompression_bomb(world: World) -> None:
    await world.create()
    picture = io.BytesIO()
    Image.new("RGB", (1200, 800), "red").save(picture, "PNG")
    (image,) = await upload(world, 1, ("red.png", picture.getvalue()))
    response = await world.client.get(image["thumbnail_url"], headers=world.owner["headers"])
    assert response.status == 200 and response.headers["Content-Type"] == "image/png"
    thumb = Image.open(io.BytesIO(await response.read()))
    assert max(thumb.size) == 320

    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # a few KB, 400 Mpx decoded
    (item,) = await upload(world, 1, ("bomb.png", bomb.getvalue()))
    began = time.monotonic()
    status, body = await world.call("GET", item["thumbnail_url"])
    assert status == 422 and "too large" in body["errors"][0]["message"]
    status, _ = await world.call("GET", world.url("/issues/1"))  # still answering
    assert status == 200 and time.monotonic() - began < 5


async def test_other_projects_and_strangers_get_404(world: World, api: Api) -> None:
    await world.create()
    (item,) = await upload(world, 1, ("a.txt", b"secret"))
    await world.api.project(world.owner, world.org, key="SEC", visibility="private")
    other = f"/api/v1/orgs/{world.org['slug']}/projects/SEC/attachments/{item['id']}"
    status, _ = await world.call("GET", other)  # the id exists, but not in that project
    assert status == 404
    for who in (world.outsider,):
        status, _ = await world.call("GET", item["url"], who)
        assert status == 404
        status, _ = await world.call("GET", world.url("/issues/1/attachments"), who)
        assert status == 404


async def test_only_the_uploader_or_an_admin_deletes(world: World) -> None:
    await world.create()
    (mine,) = await upload(world, 1, ("dev.txt", b"dev"), who=world.developer)
    (owners,) = await upload(world, 1, ("own.txt", b"own"))
    status, _ = await world.call("DELETE", owners["url"], world.developer)
    assert status == 403
    status, _ = await world.call("DELETE", mine["url"], world.developer)
    assert status == 204
    status, _ = await world.call("POST", world.url("/issues/1/attachments"), world.viewer,
                                 data=form(("v.txt", b"v")))  # fmt: skip
    assert status == 403


async def test_bad_uploads_are_4xx(world: World) -> None:
    await world.create()
    url = world.url("/issues/1/attachments")
    status, _ = await world.call("POST", url, json={"file": "x"})
    assert status == 415
    status, _ = await world.call(
        "POST", url, data=b"--x\r\ngarbage",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )  # fmt: skip
    assert status in (400, 422)
    empty = FormData(default_to_multipart=True)
    empty.add_field("other", "value")
    status, body = await world.call("POST", url, data=empty)
    assert status == 422 and body["errors"][0]["field"] == "file"
    status, _ = await world.call("POST", world.url("/issues/99/attachments"),
                                 data=form(("a.txt", b"a")))  # fmt: skip
    assert status == 404


async def test_a_client_that_disconnects_mid_upload_leaves_nothing(world: World) -> None:
    await world.create()
    server = world.client.server
    _reader, writer = await asyncio.open_connection(server.host, server.port)
    body_head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 200_000
    )
    head = (
        f"POST {world.url('/issues/1/attachments')} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: {world.owner['headers']['Authorization']}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000000\r\n\r\n"
    ).encode()
    writer.write(head + body_head)
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    for _ in range(50):  # the server notices the reset and drops the spool
        if not [p for p in stored_files(world)]:
            break
        await asyncio.sleep(0.1)
    assert stored_files(world) == []
    assert await world.count("attachments") == 0


async def test_check_reports_orphans_and_missing_files_and_repairs(world: World) -> None:
    """A crash between the file's rename and the row's commit leaves an orphan file."""
    core = world.client.app[CORE]
    await world.create()
    (kept,) = await upload(world, 1, ("kept.txt", b"kept"))
    folder = core.tenants.tenant_path(world.org["id"]).parent
    spool = blobs.Spool(folder)  # as the upload does, then "killed" before its row
    spool.write(b"orphan bytes")
    orphan = spool.keep()
    report = await check_files(core, world.org["id"])
    assert report.orphans == [orphan] and report.missing == []
    fresh = await check_files(core, world.org["id"], repair=True)  # too young: kept
    assert blobs.blob_path(folder, orphan).exists() and fresh.orphans == [orphan]
    await check_files(core, world.org["id"], repair=True, grace_seconds=0)
    assert not blobs.blob_path(folder, orphan).exists()
    assert blobs.blob_path(folder, kept["sha256"]).exists()
    blobs.blob_path(folder, kept["sha256"]).unlink()
    report = await check_files(core, world.org["id"])
    assert report.missing == [kept["sha256"]]
    status, _ = await world.call("GET", kept["url"])
    assert status == 404
