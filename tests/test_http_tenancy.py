"""Tenant slugs from URLs are attacker-controlled path text (docs/reliability.md §3.1)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api

HOSTILE = [
    "..%2Fx", "..%2F_system", "%2e%2e", "%2e%2e%2f%2e%2e%2fetc", "a%2Fb", "%2Fetc",
    "%2Fetc%2Fpasswd", "UPPER", "_system", "x" * 300, "%EF%BD%81cme", "acme%00x",
    "acme%5C..%5Csystem", "%E2%80%8Bacme", "con", "-", "a--", "%00",
]  # fmt: skip


def snapshot(root: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


@pytest.mark.parametrize("slug", HOSTILE)
async def test_hostile_org_slugs_are_404_and_create_nothing(
    api: Api, client: Any, tmp_path: Path, slug: str
) -> None:
    user = await api.user()
    await api.org(user, "acme")
    before = snapshot(tmp_path)
    for path in (f"/api/v1/orgs/{slug}", f"/api/v1/orgs/{slug}/projects/WEB"):
        response = await client.get(path, headers=user["headers"])
        assert response.status in (400, 404), (path, response.status)
        assert response.content_type == "application/problem+json"
    created = {p for p in snapshot(tmp_path) - before if not p.endswith(("-wal", "-shm"))}
    assert created == set()


@pytest.mark.parametrize(
    ("slug", "status"),
    [("../x", 422), ("UPPER", 422), ("_system", 422), ("x" * 300, 422), ("\uff41cme", 422),
     ("api", 422), ("con", 422), ("a/b", 422), ("acme", 409)],
)  # fmt: skip
async def test_bad_or_taken_slugs_are_refused_at_creation(
    api: Api, client: Any, tmp_path: Path, slug: str, status: int
) -> None:
    user = await api.user()
    await api.org(user, "acme")
    before = snapshot(tmp_path)
    response = await client.post(
        "/api/v1/orgs", json={"name": "Evil", "slug": slug}, headers=user["headers"]
    )
    assert response.status == status, await response.text()
    created = {p for p in snapshot(tmp_path) - before if not p.endswith(("-wal", "-shm"))}
    assert created == set()


async def test_an_unknown_org_id_never_creates_a_file(core_factory: Any) -> None:
    from tracker.domain.ids import new_id
    from tracker.errors import NotFound

    core = await core_factory()
    org_id = new_id()
    with pytest.raises(NotFound):
        async with core.tenants.lease(org_id):
            pass
    assert not (core.settings.data_dir / org_id).exists()
    with pytest.raises(NotFound):
        core.tenants.tenant_path("../../etc")


async def test_a_symlinked_tenant_folder_is_refused(core_factory: Any, tmp_path: Any) -> None:
    """A tenant folder replaced by a symlink (planted on disk) is never followed."""
    from tracker.domain.ids import new_id
    from tracker.errors import NotFound

    core = await core_factory()
    real = core.tenants.tenant_path(org_id := new_id())
    await core.tenants.create(org_id)
    await core.tenants.forget(org_id)
    outside = tmp_path / "outside"
    real.parent.rename(outside)
    real.parent.symlink_to(outside, target_is_directory=True)
    with pytest.raises(NotFound):
        async with core.tenants.lease(org_id):
            pass
