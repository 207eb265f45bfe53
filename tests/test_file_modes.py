"""Item 7: every file Rhythm creates is 0600 and every folder 0700, whatever the umask;
a loose data dir, `_system.db` or `.jwt_secret` found at start is fixed with a warning."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, make_settings
from tracker.core import open_core


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


async def test_everything_created_is_private_under_umask_zero(
    loose_umask: None, aiohttp_client: Any, tmp_path: Path
) -> None:
    from tracker.http.app import create_app

    data = tmp_path / "data"
    client = await aiohttp_client(create_app(make_settings(data)))
    api = Api(client)
    owner = await api.user()
    org = await api.org(owner)
    project = await api.project(owner, org)
    response = await client.post(
        f"/api/v1/orgs/{org['slug']}/projects/{project['key']}/issues",
        json={"title": "a"},
        headers=owner["headers"],
    )
    assert response.status == 201
    deleted = await client.delete(f"/api/v1/orgs/{org['slug']}", headers=owner["headers"])
    assert deleted.status in (200, 204)
    await api.org(owner)  # a second, live tenant (the first one is archived)
    found = modes(data)
    assert any(name.endswith("tracker.db") for name in found)
    assert any(name.endswith("-wal") for name in found)
    assert any(name.startswith(".archive") for name in found)
    loose = {name: f"{mode:04o}" for name, mode in found.items() if mode & 0o077}
    assert loose == {}


@pytest.mark.parametrize("name", [".", "_system.db", ".jwt_secret"])
async def test_loose_modes_found_at_start_are_fixed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    settings = make_settings(tmp_path / "data")
    async with open_core(settings, background=False):
        pass
    target = settings.data_dir / name
    os.chmod(target, 0o755 if name == "." else 0o644)
    with caplog.at_level(logging.WARNING):
        async with open_core(settings, background=False):
            pass
    assert stat.S_IMODE(target.stat().st_mode) == (0o700 if name == "." else 0o600)
    assert any("readable by other users" in r.getMessage() for r in caplog.records)


def test_a_mode_that_cannot_be_fixed_is_refused_clearly(tmp_path: Path) -> None:
    from tracker.errors import DataDirError
    from tracker.storage.files import tighten

    link = tmp_path / "link"  # chmod of a dangling symlink's target fails
    link.symlink_to(tmp_path / "missing")
    os.chmod(tmp_path, 0o755)
    # lstat sees the link (0777): a mode that cannot be changed is a clear refusal.
    with pytest.raises(DataDirError, match="cannot be made private"):
        tighten(link, 0o600)
