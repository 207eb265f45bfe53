"""The access cache answers repeated lookups without a database hop, and forgets at once."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tracker.http.keys import CORE
from tracker.services.access_cache import AccessCache


async def test_cached_lookups_are_dropped_when_access_changes(api: Api, client: Any) -> None:
    owner, member = await api.user(), await api.user()
    org = await api.org(owner)
    await api.project(owner, org, key="WEB", visibility="private")
    core = client.app[CORE]
    add = await client.post(
        f"/api/v1/orgs/{org['slug']}/members",
        json={"email": member["email"], "role": "member"},
        headers=owner["headers"],
    )
    assert add.status == 201, await add.text()
    path = f"/api/v1/orgs/{org['slug']}/projects/WEB"
    assert (await client.get(path, headers=member["headers"])).status == 404
    assert core.access_cache.get_org(org["slug"], member["id"]) is not None  # now cached
    hidden = core.access_cache.get_pair(org["slug"], "WEB", member["id"])
    assert hidden is not None and hidden.project.role is None  # org + project: one object

    # Granting a project role invalidates the cached "invisible" answer at once.
    grant = await client.post(
        f"{path}/members",
        json={"user_id": member["id"], "role": "viewer"},
        headers=owner["headers"],
    )
    assert grant.status == 201, await grant.text()
    assert core.access_cache.get_pair(org["slug"], "WEB", member["id"]) is None  # dropped
    assert (await client.get(path, headers=member["headers"])).status == 200
    assert core.access_cache.get_pair(org["slug"], "WEB", member["id"]).project.role == "viewer"

    # Archiving the org frees its slug for a new org immediately, despite the cache.
    assert (
        await client.delete(f"/api/v1/orgs/{org['slug']}", headers=owner["headers"])
    ).status in (200, 204)
    again = await client.post(
        "/api/v1/orgs", json={"name": "Again", "slug": org["slug"]}, headers=member["headers"]
    )
    assert again.status == 201
    response = await client.get(f"/api/v1/orgs/{org['slug']}", headers=member["headers"])
    assert (await response.json())["id"] == (await again.json())["id"]


def test_a_lookup_older_than_an_invalidation_is_not_stored() -> None:
    """A lookup that read before a change was dropped must not re-store what it read."""
    cache = AccessCache()
    epoch = cache.epoch
    cache.invalidate_org("org-1")  # a membership change lands while the lookup awaits
    cache.put_pair("acme", "WEB", "u1", "org-1", object(), epoch)
    assert cache.get_pair("acme", "WEB", "u1") is None
    cache.put_pair("acme", "WEB", "u1", "org-1", "fresh", cache.epoch)
    assert cache.get_pair("acme", "WEB", "u1") == "fresh"
    cache.invalidate_org("org-1")
    assert cache.get_pair("acme", "WEB", "u1") is None
