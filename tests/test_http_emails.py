"""Emails are one account whatever their Unicode spelling; invisible characters are refused.

fullwidth `ANN@example.com` and `Ann@Example.com` are Ann (NFKC + case fold,
tracker.domain.emails); NUL, control and zero-width characters are 422 in emails
and tag names, never stored.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.issues_world import make_world
from tracker.http.keys import CORE

REGISTER, LOGIN = "/api/v1/auth/register", "/api/v1/auth/login"
PASSWORD = "correct horse"
FULLWIDTH_ANN = "\uff21\uff2e\uff2e@example.com"
FULLWIDTH_ALL = "".join(chr(ord(c) + 0xFEE0) for c in "ann@example.com")  # all fullwidth
INVISIBLE = ["\x00", "\x07", "\x1f", "\x7f", "\u200b", "\u202e", "\ufeff"]


async def test_fullwidth_and_case_variants_are_one_account(api: Api, client: Any) -> None:
    body = {"email": FULLWIDTH_ANN, "password": PASSWORD}
    response = await client.post(REGISTER, json=body)
    assert response.status == 201, await response.text()
    assert (await response.json())["email"] == "ann@example.com"
    for twin in ("ann@example.com", "Ann@Example.COM", FULLWIDTH_ALL):
        again = await client.post(REGISTER, json={"email": twin, "password": PASSWORD})
        assert again.status == 201, (twin, await again.text())  # taken: no oracle, no row
        login = await client.post(LOGIN, json={"email": twin, "password": PASSWORD})
        assert login.status == 200, (twin, await login.text())
    core = client.app[CORE]
    rows = await core.system.read(lambda conn: conn.execute("SELECT email FROM users").fetchall())
    assert [row["email"] for row in rows] == ["ann@example.com"]


async def test_members_and_search_find_a_user_by_any_spelling(api: Api, client: Any) -> None:
    owner = await api.user()
    ann = await api.user(email="ann@example.com")
    org = await api.org(owner)
    await api.project(owner, org, key="WEB")
    base = f"/api/v1/orgs/{org['slug']}"
    added = await client.post(
        f"{base}/members", json={"email": FULLWIDTH_ANN, "role": "member"},
        headers=owner["headers"],
    )  # fmt: skip
    assert added.status == 201, await added.text()
    assert (await added.json())["user_id"] == ann["id"]
    issue = await client.post(
        f"{base}/projects/WEB/issues", json={"title": "Hers", "assignees": [ann["id"]]},
        headers=owner["headers"],
    )  # fmt: skip
    assert issue.status == 201, await issue.text()
    found = await client.get(
        f"{base}/projects/WEB/issues", params={"q": "assignee:ANN@EXAMPLE.COM"},
        headers=owner["headers"],
    )  # fmt: skip
    assert [i["title"] for i in (await found.json())["items"]] == ["Hers"]


@pytest.mark.parametrize("char", INVISIBLE)
async def test_invisible_characters_in_emails_are_422(client: Any, char: str) -> None:
    email = f"ann{char}@example.com"
    response = await client.post(REGISTER, json={"email": email, "password": PASSWORD})
    assert response.status == 422, await response.text()
    assert "email" in str((await response.json())["errors"])
    login = await client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert login.status == 422, await login.text()
    core = client.app[CORE]
    count = await core.system.read(lambda c: c.execute("SELECT count(*) FROM users").fetchone())
    assert count[0] == 0


@pytest.mark.parametrize("char", INVISIBLE)
async def test_invisible_characters_in_tag_names_are_422(api: Api, client: Any, char: str) -> None:
    world = await make_world(api, client)
    name = f"ta{char}g"
    status, body = await world.call("POST", world.url("/tags"), json={"name": name})
    assert status == 422, body
    assert body["errors"][0]["field"] == "name"
    issue = {"title": "t", "tags": [name]}
    status, body = await world.call("POST", world.url("/issues"), json=issue)
    assert status == 422, body
    assert body["errors"][0]["field"].startswith("tags")
    assert await world.count("tags") == 0
