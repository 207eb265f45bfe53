"""The issue page's relations, sub-issues, time log, custom fields and watch button, per role."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests import ui_world
from tests.ui_world import post

world = ui_world.world  # the shared fixture


async def _api(client: TestClient, world: dict[str, Any], path: str) -> Any:
    response = await client.get(world["api"] + path, headers=world["owner"]["headers"])
    assert response.status == 200, await response.text()
    return await response.json()


async def test_relations_add_and_remove(client: TestClient, world: dict[str, Any]) -> None:
    path = world["board"] + "/issues/1"
    http = world["owner_ui"]
    page = await (await http.get(path)).text()
    assert 'id="relation-form"' in page and "No relations." in page
    response = await post(http, path + "/relations", {"type": "blocks", "issue": "WEB-2"},
                          via=path)  # fmt: skip
    assert response.status == 303, await response.text()
    page = await (await http.get(path)).text()
    assert 'href="' + world["board"] + '/issues/2">WEB-2</a> Second card' in page
    # the inverse side is the service's (same rule as the API)
    other = await (await http.get(world["board"] + "/issues/2")).text()
    assert "is blocked by" in other and ">WEB-1</a>" in other
    listed = await _api(client, world, "/issues/1/relations")
    relation_id = listed["items"][0]["id"]
    # bad input is a 4xx page: itself, an unknown issue, a duplicate link
    for data, status in (({"type": "blocks", "issue": "1"}, 422),
                         ({"type": "blocks", "issue": "WEB-99"}, 404),
                         ({"type": "nope", "issue": "2"}, 422),
                         ({"type": "blocks", "issue": "2"}, 409)):  # fmt: skip
        response = await post(http, path + "/relations", data, via=path)
        assert response.status == status, (data, response.status)
    # a viewer and a developer: the viewer sees no controls and is refused anyway
    viewer_page = await (await world["viewer_ui"].get(path)).text()
    assert "WEB-2" in viewer_page and 'id="relation-form"' not in viewer_page
    assert f"/relations/{relation_id}/delete" not in viewer_page
    for target in (path + "/relations", f"{path}/relations/{relation_id}/delete"):
        response = await post(world["viewer_ui"], target, {"type": "relates_to", "issue": "2"},
                              via=path)  # fmt: skip
        assert response.status == 403, target
    assert 'id="relation-form"' in await (await world["dev_ui"].get(path)).text()
    response = await post(http, f"{path}/relations/{relation_id}/delete", {}, via=path)
    assert response.status == 303
    assert (await _api(client, world, "/issues/2/relations"))["items"] == []


async def test_sub_issues_list_and_create(client: TestClient, world: dict[str, Any]) -> None:
    path = world["board"] + "/issues/1"
    http = world["owner_ui"]
    response = await post(http, path + "/children", {"title": "A <child>", "type": "bug"},
                          via=path)  # fmt: skip
    assert response.status == 303 and response.headers["Location"].endswith("/issues/3")
    child = await _api(client, world, "/issues/3")
    assert child["parent"] == "WEB-1" and child["type"] == "bug"
    page = await (await http.get(path)).text()
    assert "Sub-issues (1)" in page and ">WEB-3</a> A &lt;child&gt;" in page
    assert (await post(http, path + "/children", {"title": ""}, via=path)).status == 422
    viewer_page = await (await world["viewer_ui"].get(path)).text()
    assert "Sub-issues (1)" in viewer_page and 'id="child-form"' not in viewer_page
    response = await post(world["viewer_ui"], path + "/children", {"title": "x"}, via=path)
    assert response.status == 403


async def test_time_log_list_and_log(client: TestClient, world: dict[str, Any]) -> None:
    path = world["board"] + "/issues/1"
    dev = world["dev_ui"]
    page = await (await dev.get(path)).text()
    assert 'id="time-form"' in page and "Time: 0h 00m" in page
    entry = {"hours": "1", "minutes": "30", "logged_on": "2026-01-05", "description": "pairing <b>"}
    response = await post(dev, path + "/time", entry, via=path)
    assert response.status == 303, await response.text()
    assert (await _api(client, world, "/issues/1"))["time_spent"] == 5400
    page = await (await dev.get(path)).text()
    assert "Time: 1h 30m" in page and "pairing &lt;b&gt;" in page and "2026-01-05" in page
    assert f"<td>{world['dev']['display_name'] or world['dev']['email']}</td>" in page
    bad = [{"hours": "0"}, {"hours": "x"}, {"minutes": "-5"}]
    bad += [{"hours": "1", "logged_on": "2999-01-01"}, {"hours": "1", "logged_on": "soon"}]
    for data in bad:
        assert (await post(dev, path + "/time", data, via=path)).status == 422, data
    viewer_page = await (await world["viewer_ui"].get(path)).text()
    assert "Time: 1h 30m" in viewer_page and 'id="time-form"' not in viewer_page
    response = await post(world["viewer_ui"], path + "/time", {"hours": "1"}, via=path)
    assert response.status == 403
    assert (await _api(client, world, "/issues/1"))["time_spent"] == 5400


async def test_custom_fields_edited_in_place_per_type(
    client: TestClient, world: dict[str, Any]
) -> None:
    owner = world["owner"]
    for field in ({"name": "Severity", "type": "enum", "options": ["low", "high"]},
                  {"name": "Areas", "type": "multi_enum", "options": ["ui", "api", "db"]},
                  {"name": "Points", "type": "number"}, {"name": "Ship", "type": "date"},
                  {"name": "Owner", "type": "user"}, {"name": "Note", "type": "text"}):  # fmt: skip
        response = await client.post(world["api"] + "/fields", json=field,
                                     headers=owner["headers"])  # fmt: skip
        assert response.status == 201, await response.text()
    path = world["board"] + "/issues/1"
    http = world["owner_ui"]
    page = await (await http.get(path)).text()
    assert '<select name="value" aria-label="Severity">' in page
    assert 'type="checkbox" name="value" value="api"' in page
    assert 'type="number" step="any" name="value"' in page and 'type="date" name="value"' in page
    assert 'type="email" name="value"' in page

    async def set_field(name: str, value: Any, who: Any = http) -> Any:
        values = value if isinstance(value, list) else [value]
        data: Any = [("field", name)] + [("value", v) for v in values]
        token = await ui_world.csrf(who, path)
        return await who.post(path + "/fields", data=[("csrf_token", token), *data],
                              allow_redirects=False)  # fmt: skip

    for name, value in (("Severity", "high"), ("Areas", ["ui", "db"]), ("Points", "3.5"),
                        ("Ship", "2026-03-01"), ("Owner", owner["email"]),
                        ("Note", "<i>x</i>")):  # fmt: skip
        response = await set_field(name, value)
        assert response.status == 303, (name, await response.text())
    issue = await _api(client, world, "/issues/1")
    assert issue["custom_fields"] == {"Severity": "high", "Areas": ["ui", "db"], "Points": 3.5,
                                      "Ship": "2026-03-01", "Owner": owner["id"],
                                      "Note": "<i>x</i>"}  # fmt: skip
    page = await (await http.get(path)).text()
    assert "<option selected>high</option>" in page
    assert 'value="db" checked' in page and 'value="api">' in page
    assert f'value="{owner["email"]}"' in page and 'value="&lt;i&gt;x&lt;/i&gt;"' in page
    # wrong values are the service's 422, shown as a page; empty unsets
    for name, value in (("Severity", "medium"), ("Points", "many"), ("Ship", "someday"),
                        ("Owner", "nobody@example.com"), ("Nope", "1")):  # fmt: skip
        assert (await set_field(name, value)).status == 422, name
    assert (await set_field("Severity", "")).status == 303
    assert "Severity" not in (await _api(client, world, "/issues/1"))["custom_fields"]
    viewer_page = await (await world["viewer_ui"].get(path)).text()
    assert "Points" in viewer_page and "3.5" in viewer_page
    assert 'action="' + path + '/fields"' not in viewer_page
    assert (await set_field("Points", "1", world["viewer_ui"])).status == 403


async def test_watch_and_unwatch(client: TestClient, world: dict[str, Any]) -> None:
    path = world["board"] + "/issues/1"
    viewer = world["viewer_ui"]  # reading is enough to watch (the API's rule)
    page = await (await viewer.get(path)).text()
    assert 'id="watch-button">Watch<' in page
    assert (await post(viewer, path + "/watch", {"watching": "1"}, via=path)).status == 303
    page = await (await viewer.get(path)).text()
    assert 'id="watch-button">Unwatch<' in page
    watchers = await _api(client, world, "/issues/1/watchers")
    assert world["viewer"]["id"] in {w["id"] for w in watchers["items"]}
    assert (await post(viewer, path + "/watch", {"watching": "0"}, via=path)).status == 303
    assert 'id="watch-button">Watch<' in await (await viewer.get(path)).text()
    # the owner reported it: watching by default, with the reason shown
    page = await (await world["owner_ui"].get(path)).text()
    assert 'id="watch-button">Unwatch<' in page and "reporter" in page
