"""Project settings pages: transition rules, custom fields, scripts, webhooks.

Admins get the controls; a viewer and a developer see none of them, and every POST
behind them is refused for them anyway (the route's permission, as the API's).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests import ui_world
from tests.ui_world import post

world = ui_world.world  # the shared fixture


async def _api(client: TestClient, world: dict[str, Any], path: str) -> Any:
    response = await client.get(world["api"] + path, headers=world["owner"]["headers"])
    assert response.status == 200, await response.text()
    return await response.json()


async def _stages(client: TestClient, world: dict[str, Any]) -> list[dict[str, Any]]:
    body = await _api(client, world, "/stages")
    return body["items"] if isinstance(body, dict) else body


async def test_transition_rules_add_and_remove(client: TestClient, world: dict[str, Any]) -> None:
    settings = world["board"] + "/settings"
    http = world["owner_ui"]
    stages = await _stages(client, world)
    first, second = stages[0]["id"], stages[1]["id"]
    page = await (await http.get(settings)).text()
    assert 'id="rule-form"' in page and "every move between stages is allowed" in page
    # each section once, and a plain-text title (no markup leaked into <title>)
    assert page.count('id="rule-form"') == 1 and page.count('id="field-form"') == 1
    assert re.search(r"<title>WEB settings · Rhythm</title>", page), page[:400]
    rule = {"from_stage_id": first, "to_stage_id": second, "min_role": "admin"}
    assert (await post(http, settings + "/transitions", rule, via=settings)).status == 303
    assert (await _api(client, world, "/transitions"))["rules"] == [rule]
    page = await (await http.get(settings)).text()
    assert re.search(r"<td>admin</td>", page)
    # the same pair again replaces its role instead of duplicating the rule
    rule["min_role"] = "developer"
    assert (await post(http, settings + "/transitions", rule, via=settings)).status == 303
    assert (await _api(client, world, "/transitions"))["rules"] == [rule]
    # the developer may now move a card first -> second; the rules refuse the rest (409)
    token = await ui_world.csrf(world["dev_ui"], world["board"])
    move = {"csrf_token": token, "issue": "1", "status": stages[2]["name"]}
    response = await world["dev_ui"].post(world["board"] + "/move", data=move,
                                          headers={"Accept": "application/json"})  # fmt: skip
    assert response.status == 409
    bad = {"from_stage_id": first, "to_stage_id": "no-such-stage"}
    assert (await post(http, settings + "/transitions", bad, via=settings)).status == 422
    for who in ("viewer_ui", "dev_ui"):
        page = await (await world[who].get(settings)).text()
        assert "<td>developer</td>" in page  # readable
        assert 'id="rule-form"' not in page and 'name="remove"' not in page
        response = await post(world[who], settings + "/transitions", {**rule, "remove": "1"},
                              via=settings)  # fmt: skip
        assert response.status == 403, who
    response = await post(http, settings + "/transitions", {**rule, "remove": "1"}, via=settings)
    assert response.status == 303
    assert (await _api(client, world, "/transitions"))["rules"] == []


async def test_custom_field_definitions(client: TestClient, world: dict[str, Any]) -> None:
    settings = world["board"] + "/settings"
    http = world["owner_ui"]
    page = await (await http.get(settings)).text()
    assert 'id="field-form"' in page and "No custom fields." in page
    new = {"name": "Severity", "type": "enum", "options": "low, high", "required": "1"}
    assert (await post(http, settings + "/fields", new, via=settings)).status == 303
    (field,) = (await _api(client, world, "/fields"))["items"]
    assert (field["name"], field["type"], field["options"], field["required"]) == (
        "Severity", "enum", ["low", "high"], True)  # fmt: skip
    for bad, status in (({"name": "Severity", "type": "text"}, 409),
                        ({"name": "Oops", "type": "enum"}, 422),
                        ({"name": "Oops", "type": "colour"}, 422),
                        ({"name": "a:b", "type": "text"}, 422)):  # fmt: skip
        response = await post(http, settings + "/fields", bad, via=settings)
        assert response.status == status, bad
    one = f"{settings}/fields/{field['id']}"
    change = {"name": "Impact", "options": "low, mid, high"}  # required unticked
    assert (await post(http, one, change, via=settings)).status == 303
    (field,) = (await _api(client, world, "/fields"))["items"]
    assert (field["name"], field["options"], field["required"]) == (
        "Impact", ["low", "mid", "high"], False)  # fmt: skip
    page = await (await http.get(settings)).text()
    assert 'value="low, mid, high"' in page
    for who in ("viewer_ui", "dev_ui"):
        page = await (await world[who].get(settings)).text()
        assert "<td>Impact</td>" in page and 'id="field-form"' not in page
        assert f'action="{one}"' not in page
        for target, data in ((settings + "/fields", {"name": "X", "type": "text"}),
                             (one, {"delete": "1"})):  # fmt: skip
            assert (await post(world[who], target, data, via=settings)).status == 403, who
    assert (await post(http, one, {"delete": "1"}, via=settings)).status == 303
    assert (await _api(client, world, "/fields"))["items"] == []
    assert (await post(http, one, {"delete": "1"}, via=settings)).status == 404


SOURCE = 'on_manual(function(ctx) ctx.issue:add_comment("would say hi") log("ran") end)'


async def test_scripts_list_create_edit_enable_and_preview(
    client: TestClient, world: dict[str, Any]
) -> None:
    settings = world["board"] + "/settings"
    scripts = settings + "/scripts"
    http = world["owner_ui"]
    assert 'id="scripts-link"' in await (await http.get(settings)).text()
    page = await (await http.get(scripts)).text()
    assert 'id="script-form"' in page and "No scripts yet." in page
    response = await post(http, scripts, {"name": "Greeter", "source": SOURCE, "enabled": "1"},
                          via=scripts)  # fmt: skip
    assert response.status == 303, await response.text()
    one = response.headers["Location"]
    (script,) = (await _api(client, world, "/scripts"))["items"]
    assert one == f"{scripts}/{script['id']}" and script["enabled"]
    page = await (await http.get(one)).text()
    assert "would say hi" in page and 'id="preview-form"' in page and "No runs yet." in page
    # a compile error is the service's 422 naming the line, shown as a page
    response = await post(http, scripts, {"name": "Broken", "source": "on_manual(function(\n"},
                          via=scripts)  # fmt: skip
    assert response.status == 422 and "line" in await response.text()
    # preview: what the manual run would do, nothing committed
    response = await post(http, one + "/preview", {"issue": "WEB-1"}, via=one)
    assert response.status == 200, await response.text()
    page = await response.text()
    assert 'id="preview-result"' in page and "would say hi" in page and "ran" in page
    comments = await _api(client, world, "/issues/1/comments")
    assert comments["items"] == []
    # edit with the page's version; a stale version is the API's 412
    edit = {"name": "Greeter", "source": SOURCE.replace("hi", "hello"), "enabled": "1",
            "version": str(script["version"])}  # fmt: skip
    assert (await post(http, one, edit, via=one)).status == 303
    assert (await post(http, one, edit, via=one)).status == 412
    detail = await _api(client, world, f"/scripts/{script['id']}")
    assert "hello" in detail["source"] and detail["revision"] == 2
    # disable from the list (the button sends only `enabled`)
    response = await post(http, one, {"enabled": "0"}, via=scripts)
    assert response.status == 303
    assert not (await _api(client, world, f"/scripts/{script['id']}"))["enabled"]
    assert ">Enable</button>" in await (await http.get(scripts)).text()
    for who in ("viewer_ui", "dev_ui"):
        page = await (await world[who].get(settings)).text()
        assert 'id="scripts-link"' not in page
        assert (await world[who].get(scripts)).status == 403
        assert (await world[who].get(one)).status == 403
        for target, data in ((scripts, {"name": "X", "source": SOURCE}),
                             (one, {"enabled": "1"}), (one + "/preview", {})):  # fmt: skip
            assert (await post(world[who], target, data, via=settings)).status == 403, target


async def test_webhooks_list_create_delete_and_deliveries(
    client: TestClient, world: dict[str, Any]
) -> None:
    settings = world["board"] + "/settings"
    hooks = settings + "/webhooks"
    http = world["owner_ui"]
    assert 'id="webhooks-link"' in await (await http.get(settings)).text()
    page = await (await http.get(hooks)).text()
    assert 'id="webhook-form"' in page and "No webhooks yet." in page
    token = await ui_world.csrf(http, hooks)
    form = [("csrf_token", token), ("url", "https://example.com/hook"),
            ("events", "issue.created"), ("events", "comment.created")]  # fmt: skip
    response = await http.post(hooks, data=form, allow_redirects=False)
    assert response.status == 201, await response.text()
    page = await response.text()
    secret = re.search(r'<article id="new-secret">.*?<pre>([^<]+)</pre>', page, re.S)
    assert secret is not None and len(secret.group(1)) >= 16
    (hook,) = (await _api(client, world, "/webhooks"))["items"]
    assert hook["events"] == ["comment.created", "issue.created"]
    assert secret.group(1).endswith(hook["secret_hint"].lstrip("…"))
    page = await (await http.get(hooks)).text()
    assert "https://example.com/hook" in page and secret.group(1) not in page  # shown once
    # the URL guard is the service's: a loopback target is a 422, never stored
    for url in ("http://127.0.0.1/x", "ftp://example.com", ""):
        response = await post(http, hooks, {"url": url}, via=hooks)
        assert response.status == 422, url
    one = f"{hooks}/{hook['id']}"
    page = await (await http.get(one)).text()
    assert 'id="ping-form"' in page and "No deliveries yet." in page
    assert (await post(http, one + "/ping", {}, via=one)).status == 303
    page = await (await http.get(one)).text()
    assert "<td>ping</td>" in page
    for who in ("viewer_ui", "dev_ui"):
        assert 'id="webhooks-link"' not in await (await world[who].get(settings)).text()
        assert (await world[who].get(hooks)).status == 403
        assert (await world[who].get(one)).status == 403
        for target in (hooks, one + "/delete", one + "/ping"):
            response = await post(world[who], target, {"url": "https://example.com/x"},
                                  via=settings)  # fmt: skip
            assert response.status == 403, target
    assert (await post(http, one + "/delete", {}, via=hooks)).status == 303
    assert (await _api(client, world, "/webhooks"))["items"] == []
    assert (await http.get(one)).status == 404


async def test_unknown_ids_are_404_pages_never_500(world: dict[str, Any]) -> None:
    http = world["owner_ui"]
    settings = world["board"] + "/settings"
    issue = world["board"] + "/issues/1"
    for path in (settings + "/scripts/nope", settings + "/webhooks/nope",
                 settings + "/scripts/00000000-0000-7000-8000-000000000000"):  # fmt: skip
        response = await http.get(path)
        assert response.status == 404, path
        assert "text/html" in response.headers["Content-Type"]
    for path, data in ((settings + "/scripts/nope", {"enabled": "1"}),
                       (settings + "/scripts/nope/preview", {}),
                       (settings + "/webhooks/nope/delete", {}),
                       (settings + "/webhooks/nope/ping", {}),
                       (settings + "/fields/nope", {"name": "X"}),
                       (issue + "/relations/nope/delete", {}),
                       (world["board"] + "/issues/999/time", {"hours": "1"}),
                       (world["board"] + "/issues/999/watch", {"watching": "1"}),
                       (world["board"] + "/issues/abc/children", {"title": "x"})):  # fmt: skip
        response = await post(http, path, data, via=settings)
        assert response.status == 404, path
