"""Saved searches over HTTP: per user, validated queries, names unique per user, no leaks."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tracker.http.keys import CORE

BASE = "/api/v1/users/me/searches"


async def stored(client: Any) -> list[dict[str, Any]]:
    core = client.app[CORE]
    rows = await core.system.read(
        lambda conn: conn.execute("SELECT * FROM saved_searches ORDER BY name").fetchall()
    )
    return [dict(row) for row in rows]


async def test_save_list_and_delete(api: Api, client: Any) -> None:
    ann = await api.user()
    org = await api.org(ann, slug="acme")
    body = {"name": "My open bugs", "query": "type:bug is:open assignee:me", "org": "acme"}
    response = await client.post(BASE, json=body, headers=ann["headers"])
    assert response.status == 201, await response.text()
    saved = await response.json()
    assert (saved["name"], saved["query"], saved["org"]) == ("My open bugs", body["query"], "acme")
    (row,) = await stored(client)
    assert (row["user_id"], row["org_id"], row["id"]) == (ann["id"], org["id"], saved["id"])

    await client.post(BASE, json={"name": "a crash", "query": "crash"}, headers=ann["headers"])
    response = await client.get(BASE + "?limit=1", headers=ann["headers"])
    page = await response.json()
    assert [s["name"] for s in page["items"]] == ["a crash"] and page["next_cursor"]
    response = await client.get(
        f"{BASE}?limit=1&cursor={page['next_cursor']}", headers=ann["headers"]
    )
    page = await response.json()
    assert [s["name"] for s in page["items"]] == ["My open bugs"] and page["next_cursor"] is None

    response = await client.delete(f"{BASE}/{saved['id']}", headers=ann["headers"])
    assert response.status == 204
    assert [r["name"] for r in await stored(client)] == ["a crash"]
    response = await client.delete(f"{BASE}/{saved['id']}", headers=ann["headers"])
    assert response.status == 404


async def test_searches_are_private_to_their_user(api: Api, client: Any) -> None:
    ann, bob = await api.user(), await api.user()
    response = await client.post(BASE, json={"name": "mine", "query": "x"}, headers=ann["headers"])
    saved = await response.json()
    response = await client.get(BASE, headers=bob["headers"])
    assert (await response.json())["items"] == []
    response = await client.delete(f"{BASE}/{saved['id']}", headers=bob["headers"])
    assert response.status == 404
    assert len(await stored(client)) == 1
    assert (await client.get(BASE)).status == 401


async def test_bad_saves_are_refused_with_exact_statuses(api: Api, client: Any) -> None:
    ann, bob = await api.user(), await api.user()
    await api.org(bob, slug="bobs")
    headers = ann["headers"]
    ok = await client.post(BASE, json={"name": "Crash", "query": "crash"}, headers=headers)
    assert ok.status == 201
    cases = [
        ({"name": "crash", "query": "other"}, 409, None),  # names are unique per user, any case
        ({"name": "bad", "query": 'status:"open'}, 422, "query"),
        ({"name": "bad", "query": "x", "org": "bobs"}, 422, "org"),  # not a member
        ({"name": "bad", "query": "x", "org": "nope"}, 422, "org"),
        ({"name": "", "query": "x"}, 422, "name"),
        ({"name": "x", "query": "y", "extra": 1}, 422, None),
    ]
    for body, status, field in cases:
        response = await client.post(BASE, json=body, headers=headers)
        assert response.status == status, (body, await response.text())
        if field:
            problem = await response.json()
            assert any(e["field"].endswith(field) for e in problem["errors"]), problem
    assert [r["name"] for r in await stored(client)] == ["Crash"]
    for bad in ("not-a-uuid", "00000000-0000-7000-8000-000000000000"):
        assert (await client.delete(f"{BASE}/{bad}", headers=headers)).status == 404
    response = await client.get(BASE + "?cursor=garbage", headers=headers)
    assert response.status == 400
