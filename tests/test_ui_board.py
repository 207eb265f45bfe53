"""The board page's swim lanes (a GET parameter, no script needed) and its speed-path cards."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests import ui_world

world = ui_world.world  # the shared fixture


def _lanes(page: str) -> dict[str, str]:
    """lane label -> that lane's HTML."""
    parts = re.split(r'<section class="lane" aria-label="([^"]*)">', page)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


async def _issue(client: TestClient, world: dict[str, Any], **fields: Any) -> int:
    response = await client.post(world["api"] + "/issues", json=fields,
                                 headers=world["owner"]["headers"])  # fmt: skip
    assert response.status == 201, await response.text()
    return int((await response.json())["number"])


async def test_swim_lanes_by_assignee_priority_and_epic(
    client: TestClient, world: dict[str, Any]
) -> None:
    owner, http = world["owner"], world["owner_ui"]
    response = await client.patch(world["api"] + "/issues/1",
                                  json={"assignees": [owner["id"]], "priority": "critical"},
                                  headers=owner["headers"])  # fmt: skip
    assert response.status == 200, await response.text()
    epic = await _issue(client, world, title="Checkout <epic>", type="epic")
    story = await _issue(client, world, title="Story under it", type="story", parent=epic)
    await _issue(client, world, title="Task under the story", parent=story)

    plain = await (await http.get(world["board"])).text()
    assert 'class="lane"' not in plain and 'id="board-lanes"' in plain

    page = await (await http.get(world["board"], params={"lanes": "assignee"})).text()
    lanes = _lanes(page)
    assert list(lanes)[-1] == "Unassigned"
    mine = [label for label in lanes if label != "Unassigned"]
    assert len(mine) == 1 and 'id="card-WEB-1"' in lanes[mine[0]]
    assert 'id="card-WEB-1"' not in lanes["Unassigned"] and 'id="card-WEB-2"' in lanes["Unassigned"]
    assert '<option value="assignee" selected>' in page
    # a lane's lists carry its number, so a card moves between columns of its own lane only
    assert 'data-lane="1"' in page and 'data-lane="2"' in page

    lanes = _lanes(await (await http.get(world["board"], params={"lanes": "priority"})).text())
    assert list(lanes) == ["critical", "normal"]
    assert 'id="card-WEB-1"' in lanes["critical"] and 'id="card-WEB-2"' in lanes["normal"]

    lanes = _lanes(await (await http.get(world["board"], params={"lanes": "epic"})).text())
    epic_lane = f"WEB-{epic} Checkout &lt;epic&gt;"  # the label is escaped text
    assert list(lanes) == [epic_lane, "No epic"]
    # the story and its sub-task (nearest epic ancestor) ride in the epic's lane
    assert f'id="card-WEB-{story}"' in lanes[epic_lane]
    assert f'id="card-WEB-{story + 1}"' in lanes[epic_lane]
    assert f'id="card-WEB-{epic}"' in lanes["No epic"] and 'id="card-WEB-1"' in lanes["No epic"]

    # lanes and the filter together; the viewer sees lanes but cannot drag
    params = {"lanes": "priority", "q": "First"}
    page = await (await world["viewer_ui"].get(world["board"], params=params)).text()
    assert list(_lanes(page)) == ["critical"] and 'data-movable="false"' in page

    response = await http.get(world["board"], params={"lanes": "reporter"})
    assert response.status == 422 and "lanes" in await response.text()
