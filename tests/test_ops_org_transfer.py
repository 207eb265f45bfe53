"""`rhythm org export` / `rhythm org import`: one org moved to a fresh server, row for row."""

from __future__ import annotations

import asyncio
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tests.test_http_attachments import upload
from tracker.core import open_core
from tracker.errors import BadRequest, Conflict, NotFound
from tracker.http.app import create_app
from tracker.services.org_transfer import export_org, import_org
from tracker.settings import Settings
from tracker.storage.user_refs import UUID


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The server shares its tenants' files: these tests take snapshots of live files
    in-process, beside it (with held tenants that is refused: test_ops_backup_online.py)."""
    return make_settings(tmp_path / "data", exclusive_tenants=False)


TABLES = (
    "issues", "comments", "changes", "issue_changes", "attachments", "projects",
    "project_members", "issue_assignees", "stages", "stage_counts",
)  # fmt: skip


def table(db: Path, name: str, mapping: dict[str, str] | None = None) -> list[tuple[Any, ...]]:
    """Every row, with user ids rewritten through `mapping` (the import's promise)."""
    with sqlite3.connect(db) as conn:
        found = conn.execute(f"SELECT * FROM {name}").fetchall()
    swap = mapping or {}
    out = [
        tuple(
            UUID.sub(lambda m: swap.get(m.group(0), m.group(0)), v) if isinstance(v, str) else v
            for v in row
        )
        for row in found
    ]
    return sorted(out, key=repr)


async def fill(world: World) -> None:
    """Issues, comments, an edit, assignees and an attachment: every kind of row."""
    for n in range(5):
        issue = await world.create(title=f"Export me {n}", description=f"body {n}")
        url = world.url(f"/issues/{issue['number']}")
        status, _ = await world.call(
            "POST", f"{url}/comments", world.developer, json={"body": f"comment {n}"}
        )
        assert status == 201
    status, _ = await world.call(
        "PUT", world.url("/issues/2/assignees"), json={"user_ids": [world.developer["id"]]}
    )
    assert status == 200
    status, _ = await world.call(
        "PATCH", world.url("/issues/3"), json={"title": "Renamed kettle"},
        headers={"If-Match": '"1"'},
    )  # fmt: skip
    assert status == 200, _
    await upload(world, 1, ("trace.log", b"stack trace\n" * 50))


async def register(settings: Settings, emails: list[str]) -> None:
    async with TestClient(TestServer(create_app(settings))) as target:
        api = Api(target)
        for email in emails:
            await api.user(email)


async def test_export_then_import_into_a_fresh_data_dir(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    await fill(world)
    file = tmp_path / "acme.tar"
    manifest = await asyncio.to_thread(export_org, settings, world.org["slug"], file)  # online
    with tarfile.open(file) as tar:
        names = tar.getnames()
    assert names[0] == "manifest.json" and "tracker.db" in names
    assert sum(n.startswith("files/") for n in names) == 1 == manifest["files"]
    source_db = settings.data_dir / world.org["id"] / "tracker.db"

    target = make_settings(tmp_path / "target")
    people = [world.owner, world.developer, world.reporter, world.viewer]
    await register(target, [p["email"] for p in people[:2]])  # two accounts missing
    async with open_core(target, background=False) as core:
        with pytest.raises(NotFound) as missing:
            await import_org(core, file)
    assert world.reporter["email"] in missing.value.detail
    assert world.viewer["email"] in missing.value.detail
    assert not (target.data_dir / world.org["id"]).exists()  # nothing left behind

    await register(target, [p["email"] for p in people[2:]])
    async with open_core(target, background=False) as core:
        done = await import_org(core, file)
        with pytest.raises(Conflict):  # the slug now exists
            await import_org(core, file)
        members = await core.system.read(
            lambda c: c.execute(
                "SELECT u.email, m.role FROM org_members m JOIN users u ON u.id = m.user_id "
                "WHERE m.org_id = ?",
                (world.org["id"],),
            ).fetchall()
        )
    mapping = {p["id"]: done["mapped"][p["email"]] for p in people}
    assert all(old != new for old, new in mapping.items())  # other accounts, other ids
    assert {(r[0], r[1]) for r in members} == {(m["email"], m["role"]) for m in manifest["members"]}
    imported = target.data_dir / world.org["id"] / "tracker.db"
    for name in TABLES:
        assert table(imported, name) == table(source_db, name, mapping), name
    with sqlite3.connect(imported) as conn:
        new_epoch = conn.execute("SELECT epoch FROM sync_state").fetchone()[0]
    assert new_epoch == done["epoch"] != manifest["epoch"]

    # The moved org serves: search (its index rebuilt), history, the attachment's bytes.
    async with TestClient(TestServer(create_app(target))) as moved:
        response = await moved.post(
            "/api/v1/auth/login",
            json={"email": world.developer["email"], "password": world.developer["password"]},
        )
        headers = {"Authorization": f"Bearer {(await response.json())['access_token']}"}
        base = f"/api/v1/orgs/{world.org['slug']}/projects/WEB"
        found = await (await moved.get(f"{base}/issues?q=kettle", headers=headers)).json()
        assert [i["key"] for i in found["items"]] == ["WEB-3"]
        mine = await (await moved.get(f"{base}/issues/2", headers=headers)).json()
        assert mine["assignees"] == [mapping[world.developer["id"]]]
        listed = await (await moved.get(f"{base}/issues/1/attachments", headers=headers)).json()
        (attachment,) = listed["items"]
        got = await moved.get(f"{base}/attachments/{attachment['id']}", headers=headers)
        assert await got.read() == b"stack trace\n" * 50


async def test_import_can_create_missing_people_disabled(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    await world.create(title="one")
    file = tmp_path / "org.tar"
    await asyncio.to_thread(export_org, settings, world.org["slug"], file)
    target = make_settings(tmp_path / "target")
    async with open_core(target, background=False) as core:
        done = await import_org(core, file, create_users=True)
        rows = await core.system.read(
            lambda c: c.execute("SELECT id, disabled_at, password_hash FROM users").fetchall()
        )
    assert world.owner["email"] in done["created_users"]
    assert all(r["disabled_at"] is not None and r["password_hash"] == "!" for r in rows)
    assert {r["id"] for r in rows} >= {world.owner["id"]}  # ids kept when free
    async with TestClient(TestServer(create_app(target))) as moved:
        response = await moved.post(
            "/api/v1/auth/login", json={"email": world.owner["email"], "password": "anything1"}
        )
        assert response.status == 401


async def test_import_refuses_a_tampered_file(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    world = await make_world(api, client)
    await world.create(title="one")
    file = tmp_path / "org.tar"
    await asyncio.to_thread(export_org, settings, world.org["slug"], file)
    evil = tmp_path / "evil.tar"
    with tarfile.open(file) as src, tarfile.open(evil, "w") as out:
        for member in src:
            data = src.extractfile(member)
            if member.name == "tracker.db":
                out.addfile(member, data)
                extra = tarfile.TarInfo("../../escape")
                extra.size = 1
                import io

                out.addfile(extra, io.BytesIO(b"x"))
            else:
                out.addfile(member, data)
    target = make_settings(tmp_path / "target")
    async with open_core(target, background=False) as core:
        with pytest.raises(BadRequest, match="unexpected entry"):
            await import_org(core, evil, create_users=True)
    assert not (tmp_path / "escape").exists()
    assert not any(p.name.startswith(".rhythm-import") for p in target.data_dir.iterdir())


def test_cli_org_export_and_import(tmp_path: Path) -> None:
    from tests.cli_world import ACME_SETUP, ANN, PASSWORD_INPUT, cli_on

    source = cli_on(tmp_path / "a", ACME_SETUP)
    assert source("issue", "create", "Moved", "-o", "acme", "-p", "WEB", "--as", ANN).exit_code == 0
    result = source("org", "export", "acme", str(tmp_path / "acme.tar"))
    assert result.exit_code == 0 and "1 member(s)" in result.output, result.output
    target = cli_on(tmp_path / "b", [("user", "create", "other@example.com")])
    result = target("org", "import", str(tmp_path / "acme.tar"))
    assert result.exit_code == 3 and ANN in result.output  # not found: ann has no account
    assert target("user", "create", ANN, input=PASSWORD_INPUT).exit_code == 0
    result = target("org", "import", str(tmp_path / "acme.tar"))
    assert result.exit_code == 0, result.output
    result = target("issue", "list", "-o", "acme", "-p", "WEB", "--as", ANN)
    assert "Moved" in result.output
    result = target("org", "import", str(tmp_path / "acme.tar"))
    assert result.exit_code == 4  # the slug exists now


async def test_export_beside_a_running_server_is_copied_by_the_server(
    client: TestClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    """With a server answering on its backup socket, the export's database and files
    come from the server's own page copy (no read-only snapshot of the live file), and
    hold what the live tenant holds; nothing of the copy is left beside the file."""
    from cli.backup_client import via_server

    world = await make_world(api, client)
    await fill(world)
    slug = world.org["slug"]
    asked: list[Path] = []

    def server_copy(dest: Path) -> bool:
        asked.append(dest)
        return via_server(settings.data_dir, dest, slug) is not None

    file = tmp_path / "out" / "acme.tar"
    file.parent.mkdir()
    manifest = await asyncio.to_thread(export_org, settings, slug, file, server_copy=server_copy)
    assert manifest["copied_by"] == "server" and len(asked) == 1 and asked[0].is_absolute()
    assert sorted(p.name for p in file.parent.iterdir()) == ["acme.tar"]
    with tarfile.open(file) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    exported = tmp_path / "unpacked" / "tracker.db"
    live = settings.data_dir / world.org["id"] / "tracker.db"
    for name in TABLES:
        assert table(exported, name) == table(live, name), name
    assert manifest["files"] == 1 and (tmp_path / "unpacked" / "files").is_dir()


def test_export_without_a_server_answering_takes_a_snapshot(tmp_path: Path) -> None:
    """No server: `server_copy` says so and the export reads a snapshot, as before."""
    settings = make_settings(tmp_path / "data")

    async def make_org() -> str:
        async with TestClient(TestServer(create_app(settings))) as server:
            api = Api(server)
            owner = await api.user("owner@example.com")
            return str((await api.org(owner))["slug"])

    slug = asyncio.run(make_org())
    manifest = export_org(settings, slug, tmp_path / "acme.tar", server_copy=lambda _: False)
    assert manifest["copied_by"] == "snapshot" and manifest["org"]["slug"] == slug
