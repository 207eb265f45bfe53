"""Item 1: a full or read-only disk answers 507/503 with Retry-After, never 500 or 404;
reads keep working, nothing is half-written, readiness says why, and it recovers by itself.

Two ways to make the disk refuse: `max_page_count` (SQLITE_FULL on any machine) and,
when the test may mount one, a small tmpfs that is really filled or remounted read-only.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tracker.http.app import create_app
from tracker.http.keys import CORE


def issues_url(org: dict[str, Any], project: dict[str, Any]) -> str:
    return f"/api/v1/orgs/{org['slug']}/projects/{project['key']}/issues"


async def set_page_cap(client: TestClient, org_id: str | None, pages: int | None) -> None:
    """Cap the database file at its current size (None lifts the cap)."""
    core = client.app[CORE]

    def cap(conn: sqlite3.Connection) -> None:
        count = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {count if pages is None else pages}")

    if org_id is None:
        await core.system.read(cap)
    else:
        async with core.tenants.lease(org_id) as db:
            await db.read(cap)


async def create_until_refused(client: TestClient, url: str, headers: dict[str, str]) -> int:
    """Create issues until the disk refuses one; returns how many were created."""
    created = 0
    for n in range(400):
        response = await client.post(
            url, json={"title": f"t{n}", "description": "x" * 4000}, headers=headers
        )
        if response.status == 201:
            created += 1
            continue
        assert response.status == 507, await response.text()
        assert response.content_type == "application/problem+json"
        assert int(response.headers["Retry-After"]) > 0
        return created
    raise AssertionError("the disk never filled up")


async def test_full_tenant_writes_507_reads_work_nothing_half_written_then_recovers(
    api: Api, client: TestClient
) -> None:
    owner = await api.user()
    org = await api.org(owner)
    project = await api.project(owner, org)
    url = issues_url(org, project)
    assert (await client.post(url, json={"title": "first"}, headers=owner["headers"])).status == 201
    await set_page_cap(client, org["id"], pages=None)
    created = 1 + await create_until_refused(client, url, owner["headers"])
    assert (await client.get(f"{url}/1", headers=owner["headers"])).status == 200
    listing = await (await client.get(f"{url}?limit=200", headers=owner["headers"])).json()
    numbers = sorted(item["number"] for item in listing["items"])
    assert numbers == list(range(1, created + 1))  # the refused one left no trace
    await set_page_cap(client, org["id"], pages=1_000_000)  # space is back
    response = await client.post(url, json={"title": "again"}, headers=owner["headers"])
    assert response.status == 201
    assert (await response.json())["number"] == created + 1


async def test_full_system_db_login_507_token_use_works_org_create_leaves_nothing(
    api: Api, client: TestClient, settings: Any
) -> None:
    owner = await api.user()
    before = set(os.listdir(settings.data_dir))
    await set_page_cap(client, None, pages=None)
    login = {"email": owner["email"], "password": owner["password"]}
    statuses = set()
    for _ in range(60):  # fill the system DB's free pages until a write is refused
        response = await client.post("/api/v1/auth/login", json=login)
        statuses.add(response.status)
        if response.status == 507:
            break
    assert statuses <= {200, 507} and 507 in statuses
    assert int(response.headers["Retry-After"]) > 0
    assert (await client.get("/api/v1/users/me", headers=owner["headers"])).status == 200
    made = set()
    for n in range(60):  # was 404 "organization not found" once the system DB refused
        response = await client.post(
            "/api/v1/orgs", json={"name": f"Acme {n}"}, headers=owner["headers"]
        )
        if response.status != 201:
            break
        made.add((await response.json())["id"])
    assert response.status == 507, await response.text()
    assert set(os.listdir(settings.data_dir)) == before | made  # no stray tenant folder
    await set_page_cap(client, None, pages=1_000_000)
    assert (await client.post("/api/v1/auth/login", json=login)).status == 200
    await api.org(owner, "acme")


# -- a real small file system ---------------------------------------------------------------


def _mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'})")


def _remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    mounted: list[Path] = []
    yield mounted
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


async def test_really_full_disk_507_ready_503_then_recovers(
    aiohttp_client: Any, tmp_path: Path, mounts: list[Path]
) -> None:
    data = tmp_path / "fs"
    _mount(data, "24m")
    mounts.append(data)
    settings = make_settings(data / "data", min_free_mb=2)
    client = await aiohttp_client(create_app(settings))
    api = Api(client)
    owner = await api.user()
    org = await api.org(owner)
    project = await api.project(owner, org)
    url = issues_url(org, project)
    assert (await client.post(url, json={"title": "first"}, headers=owner["headers"])).status == 201
    ready = await client.get("/api/v1/health/ready")
    assert ready.status == 200, await ready.text()

    filler = data / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    for chunk in (1 << 20, 4096, 1):  # every last byte
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError:
            pass
    os.close(fd)

    created = 1 + await create_until_refused(client, url, owner["headers"])
    assert (await client.get(f"{url}/1", headers=owner["headers"])).status == 200
    response = await client.post("/api/v1/orgs", json={"name": "Full"}, headers=owner["headers"])
    assert response.status == 507, await response.text()
    ready = await client.get("/api/v1/health/ready")
    assert ready.status == 503
    checks = (await ready.json())["checks"]
    assert "RHYTHM_MIN_FREE_MB" in checks["disk"]

    filler.unlink()  # space comes back: no restart, no operator action
    response = await client.post(url, json={"title": "again"}, headers=owner["headers"])
    assert response.status == 201, await response.text()
    assert (await response.json())["number"] == created + 1
    assert (await client.get("/api/v1/health/ready")).status == 200
    await api.org(owner)
    async with client.app[CORE].tenants.lease(org["id"]) as db:  # the server holds the file
        check = await db.read(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0])
    assert check == "ok"


async def test_read_only_tenant_is_503_not_404_and_recovers(
    aiohttp_client: Any, tmp_path: Path, mounts: list[Path]
) -> None:
    settings = make_settings(tmp_path / "data")
    client = await aiohttp_client(create_app(settings))
    api = Api(client)
    owner = await api.user()
    org = await api.org(owner)
    project = await api.project(owner, org)
    url = issues_url(org, project)
    assert (await client.post(url, json={"title": "first"}, headers=owner["headers"])).status == 201
    await client.close()  # closes the tenant cleanly

    folder = settings.data_dir / org["id"]
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    _mount(folder, "8m")
    mounts.append(folder)
    shutil.copytree(saved, folder, dirs_exist_ok=True)
    _remount(folder, "ro")

    client = await aiohttp_client(create_app(settings))
    for method, body in (("GET", None), ("POST", {"title": "x"})):
        response = await client.request(method, url, json=body, headers=owner["headers"])
        assert response.status == 503, await response.text()
        assert response.content_type == "application/problem+json"
        assert int(response.headers["Retry-After"]) > 0
    _remount(folder, "rw")
    assert (await client.get(f"{url}/1", headers=owner["headers"])).status == 200
    assert (await client.post(url, json={"title": "y"}, headers=owner["headers"])).status == 201


async def test_read_only_tenant_by_file_modes_is_503_not_404(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """The same fault made with chmod; root ignores file modes, so it needs another user."""
    if os.geteuid() == 0:
        pytest.skip("running as root, which ignores file modes (the tmpfs test covers this)")
    settings = make_settings(tmp_path / "data")
    client = await aiohttp_client(create_app(settings))
    api = Api(client)
    owner = await api.user()
    org = await api.org(owner)
    project = await api.project(owner, org)
    url = issues_url(org, project)
    await client.close()
    folder = settings.data_dir / org["id"]
    for path in folder.iterdir():
        os.chmod(path, 0o400)
    os.chmod(folder, 0o500)
    try:
        client = await aiohttp_client(create_app(settings))
        response = await client.post(url, json={"title": "x"}, headers=owner["headers"])
        assert response.status == 503, await response.text()
        assert int(response.headers["Retry-After"]) > 0
    finally:
        os.chmod(folder, 0o700)
        for path in folder.iterdir():
            os.chmod(path, 0o600)
    assert (await client.post(url, json={"title": "y"}, headers=owner["headers"])).status == 201
