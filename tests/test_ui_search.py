"""Saved searches on the search page: list, save the current query, delete (per user)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests import ui_world
from tests.ui_world import post

world = ui_world.world  # the shared fixture


async def test_saved_searches_list_save_and_delete(
    client: TestClient, world: dict[str, Any]
) -> None:
    http = world["owner_ui"]
    search = f"/o/{world['org']['slug']}/search"
    page = await (await http.get(search)).text()
    assert 'id="save-search-form"' not in page and "Saved searches" not in page
    query = "second & <more> priority:normal"
    page = await (await http.get(search, params={"q": query})).text()
    assert 'id="save-search-form"' in page
    assert 'name="query" value="second &amp; &lt;more&gt; priority:normal"' in page
    response = await post(http, search + "/saved", {"name": "Mine <b>", "query": query},
                          via=search)  # fmt: skip
    assert response.status == 303, await response.text()
    assert response.headers["Location"].startswith(search + "?q=second%20%26%20")
    mine = await client.get("/api/v1/users/me/searches", headers=world["owner"]["headers"])
    items = (await mine.json())["items"]
    assert [(s["name"], s["query"], s["org"]) for s in items] == [
        ("Mine <b>", query, world["org"]["slug"])
    ]
    page = await (await http.get(search)).text()
    assert "Saved searches (1)" in page and "Mine &lt;b&gt;" in page
    link = re.search(r'<a href="([^"]+)">Mine &lt;b&gt;</a>', page)
    assert link is not None
    followed = await http.get(link.group(1).replace("&amp;", "&"))
    assert 'value="second &amp; &lt;more&gt; priority:normal"' in await followed.text()
    # names are unique per user (409), malformed queries are refused (422), no 500s
    for data, status in (({"name": "Mine <b>", "query": "x"}, 409),
                         ({"name": "Bad", "query": "status:"}, 422),
                         ({"name": "", "query": "x"}, 422)):  # fmt: skip
        response = await post(http, search + "/saved", data, via=search)
        assert response.status == status, data
    # another user sees none of them, and cannot delete them
    other = await (await world["viewer_ui"].get(search)).text()
    assert "Mine &lt;b&gt;" not in other
    delete = f"{search}/saved/{items[0]['id']}/delete"
    assert (await post(world["viewer_ui"], delete, {}, via=search)).status == 404
    assert (await post(http, delete, {}, via=search)).status == 303
    assert "Saved searches" not in await (await http.get(search)).text()
    assert (await post(http, f"{search}/saved/not-an-id/delete", {}, via=search)).status == 404
