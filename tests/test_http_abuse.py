"""Item 5: sign-up and org-creation abuse limits, no enumeration through register,
and the operator's sign-up switch with invitations."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tracker.http.app import create_app
from tracker.http.keys import CORE


async def make_client(aiohttp_client: Any, tmp_path: Path, **settings: Any) -> TestClient:
    return await aiohttp_client(create_app(make_settings(tmp_path / "data", **settings)))


async def register(client: TestClient, email: str, password: str = "correct horse") -> Any:
    return await client.post("/api/v1/auth/register", json={"email": email, "password": password})


async def test_signups_are_throttled_per_address_taken_or_free(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await make_client(aiohttp_client, tmp_path, signups_per_address=3)
    statuses = [
        (await register(client, email)).status
        for email in ("a@example.com", "a@example.com", "b@example.com", "c@example.com")
    ]
    assert statuses == [201, 201, 201, 429]
    response = await register(client, "d@example.com")
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    login = {"email": "c@example.com", "password": "correct horse"}
    assert (await client.post("/api/v1/auth/login", json=login)).status == 401  # never stored


async def test_register_answers_taken_and_free_emails_alike_in_shape_and_time(
    api: Api, client: TestClient
) -> None:
    await api.user("taken@example.com")
    taken, free = [], []
    for n in range(15):  # interleaved, so drift on the box hits both sides
        for email, times in (("taken@example.com", taken), (f"free{n}@example.com", free)):
            began = time.perf_counter()
            response = await register(client, email)
            times.append(time.perf_counter() - began)
            assert response.status == 201
            assert set(await response.json()) == {"id", "email", "display_name", "created_at"}
    ratio = statistics.median(taken) / statistics.median(free)
    assert 0.6 < ratio < 1.66, ratio  # skipping the hash for a taken email would be ~0.2


async def test_org_creation_is_capped_per_user_even_in_parallel(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await make_client(aiohttp_client, tmp_path, max_orgs_per_user=3)
    api = Api(client)
    owner, other = await api.user(), await api.user()
    responses = await asyncio.gather(
        *(client.post("/api/v1/orgs", json={"name": f"Org {n}"}, headers=owner["headers"])
          for n in range(8))
    )  # fmt: skip
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] * 3 + [429] * 5
    refused = next(r for r in responses if r.status == 429)
    assert refused.content_type == "application/problem+json" and refused.headers["Retry-After"]
    folders = [p for p in (tmp_path / "data").iterdir() if p.is_dir() and len(p.name) == 36]
    assert len(folders) == 3  # the refused ones left no tenant behind
    await api.org(other)  # the cap is per user
    mine = await (await client.get("/api/v1/orgs", headers=owner["headers"])).json()
    slug = mine["items"][0]["slug"]
    assert (await client.delete(f"/api/v1/orgs/{slug}", headers=owner["headers"])).status in (
        200, 204)  # fmt: skip
    refused = await client.post("/api/v1/orgs", json={"name": "Again"}, headers=owner["headers"])
    assert refused.status == 429  # a create/delete loop is not free: archives keep their files

    def age_archive(conn: Any) -> None:
        conn.execute("UPDATE orgs SET archived_at = '2000-01-01T00:00:00.000Z' "
                     "WHERE archived_at IS NOT NULL")  # fmt: skip

    await client.app[CORE].system.write(age_archive)
    await api.org(owner)  # a day after archiving, the place is free again


async def test_closed_sign_up_refuses_registration_but_operators_still_create_users(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    from tracker.domain.models.accounts import RegisterIn
    from tracker.services import accounts

    client = await make_client(aiohttp_client, tmp_path, signup="closed")
    response = await register(client, "ann@example.com")
    assert response.status == 403
    assert "closed" in (await response.json())["detail"]
    core = client.app[CORE]
    await accounts.register(core, RegisterIn(email="ann@example.com", password="correct horse"))
    login = {"email": "ann@example.com", "password": "correct horse"}
    assert (await client.post("/api/v1/auth/login", json=login)).status == 200


async def test_invite_only_sign_up_with_an_admins_invitation(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    from tracker.domain.models.accounts import RegisterIn
    from tracker.services import accounts

    client = await make_client(aiohttp_client, tmp_path, signup="invite")
    core = client.app[CORE]
    await accounts.register(core, RegisterIn(email="owner@example.com", password="correct horse"))
    login = await client.post(
        "/api/v1/auth/login", json={"email": "owner@example.com", "password": "correct horse"}
    )
    headers = {"Authorization": f"Bearer {(await login.json())['access_token']}"}
    org = await (await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=headers)).json()
    invites = f"/api/v1/orgs/{org['slug']}/invites"

    assert (await register(client, "ann@example.com")).status == 403  # not invited
    response = await client.post(invites, json={"email": "ANN@example.com"}, headers=headers)
    assert response.status == 201, await response.text()
    assert (await response.json())["role"] == "member"
    again = await client.post(invites, json={"email": "ann@example.com"}, headers=headers)
    assert again.status == 409
    existing = await client.post(invites, json={"email": "owner@example.com"}, headers=headers)
    assert existing.status == 409
    revoked = await client.post(invites, json={"email": "bob@example.com"}, headers=headers)
    bob_invite = (await revoked.json())["id"]
    assert (await client.delete(f"{invites}/{bob_invite}", headers=headers)).status == 204
    listed = await (await client.get(invites, headers=headers)).json()
    assert [i["email"] for i in listed["items"]] == ["ann@example.com"]  # stored normalized

    assert (await register(client, "bob@example.com")).status == 403  # revoked
    response = await register(client, "ann@example.com")
    assert response.status == 201, await response.text()
    ann = await client.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": "correct horse"}
    )
    ann_headers = {"Authorization": f"Bearer {(await ann.json())['access_token']}"}
    seen = await client.get(f"/api/v1/orgs/{org['slug']}", headers=ann_headers)
    assert seen.status == 200 and (await seen.json())["role"] == "member"
    assert (await (await client.get(invites, headers=headers)).json())["items"] == []
    members = await client.get(f"/api/v1/orgs/{org['slug']}/members", headers=headers)
    assert "ann@example.com" in await members.text()


@pytest.mark.parametrize("mode", ["open", "invite", "closed"])
def test_signup_mode_is_a_setting(tmp_path: Path, mode: str) -> None:
    assert make_settings(tmp_path, signup=mode).signup == mode


async def test_pending_invitations_per_org_are_capped(
    api: Api, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.services import invites

    monkeypatch.setattr(invites, "MAX_PENDING_PER_ORG", 2)
    owner = await api.user()
    org = await api.org(owner)
    url = f"/api/v1/orgs/{org['slug']}/invites"
    statuses = [
        (
            await client.post(url, json={"email": f"x{n}@example.com"}, headers=owner["headers"])
        ).status
        for n in range(3)
    ]
    assert statuses == [201, 201, 429]
