"""The web UI over the aiohttp test client: pages per role, forms, the card move, search."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp.test_utils import TestClient

from tests import ui_world
from tests.conftest import Api
from tests.ui_world import csrf, post, session, sign_in, sign_up

world = ui_world.world  # the shared fixture

_n = itertools.count(1)


async def test_sign_up_create_org_and_project_then_sign_out(client: TestClient) -> None:
    http = await session(client)
    try:
        response = await http.get("/", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login")
        await sign_up(http, "new@example.com")
        home = await (await http.get("/")).text()
        assert "Your organizations" in home and "Create an organization" in home
        response = await post(http, "/orgs", {"name": "Blue Team", "slug": "blue"})
        assert response.status == 303 and response.headers["Location"] == "/o/blue"
        page = await (await http.get("/o/blue")).text()
        assert "Create a project" in page
        response = await post(
            http, "/o/blue/projects", {"name": "Site", "key": "SITE"}, via="/o/blue"
        )
        assert response.headers["Location"] == "/o/blue/p/SITE"
        board = await (await http.get("/o/blue/p/SITE")).text()
        assert "todo" in board.lower() and 'id="board"' in board
        assert "Blue Team" in await (await http.get("/")).text()
        cookies = {c.key: c for c in http.cookie_jar}
        assert cookies["rhythm_session"]["httponly"] and cookies["rhythm_rt"]["httponly"]
        assert cookies["rhythm_session"]["samesite"] == "Lax"
        refresh = cookies["rhythm_rt"].value
        response = await post(http, "/logout", {})
        assert response.status == 303
        assert (await http.get("/", allow_redirects=False)).status == 303
        # sign-out revoked the refresh family: the old token no longer rotates
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        assert response.status == 401
    finally:
        await http.close()


async def test_wrong_password_shows_the_form_again(client: TestClient, api: Api) -> None:
    user = await api.user()
    http = await session(client)
    try:
        token = await csrf(http)
        response = await http.post(
            "/login", data={"csrf_token": token, "email": user["email"], "password": "wrong one"}
        )
        assert response.status == 401
        assert "Sign in" in await response.text()
    finally:
        await http.close()


async def test_expired_access_cookie_is_renewed_with_the_refresh_token(
    client: TestClient, api: Api
) -> None:
    user = await api.user()
    http = await session(client)
    try:
        await sign_in(http, user["email"])
        old_refresh = next(c.value for c in http.cookie_jar if c.key == "rhythm_rt")
        http.cookie_jar.clear(lambda c: c.key == "rhythm_session")  # as when it expired
        response = await http.get("/", allow_redirects=False)
        assert response.status == 200
        new_refresh = next(c.value for c in http.cookie_jar if c.key == "rhythm_rt")
        assert new_refresh != old_refresh  # rotated
        assert (await http.get("/", allow_redirects=False)).status == 200
    finally:
        await http.close()


async def test_board_shows_columns_counts_and_cards(world: dict[str, Any]) -> None:
    page = await (await world["owner_ui"].get(world["board"])).text()
    assert 'data-stage="todo"' in page.lower() or "data-stage=" in page
    assert "WEB-1" in page and "WEB-2" in page and "First card" in page
    assert 'data-movable="true"' in page and "New issue" in page
    viewer_page = await (await world["viewer_ui"].get(world["board"])).text()
    assert "WEB-1" in viewer_page
    assert 'data-movable="false"' in viewer_page and "New issue" not in viewer_page


async def test_board_filter_and_its_errors(world: dict[str, Any]) -> None:
    http = world["owner_ui"]
    page = await (await http.get(world["board"], params={"q": "Second"})).text()
    assert "WEB-2" in page and "WEB-1" not in page
    response = await http.get(world["board"], params={"q": 'title:"open'})
    assert response.status == 400
    page = await response.text()
    assert "Invalid query" in page and "position" in page and "^" in page


async def _stage_names(client: TestClient, world: dict[str, Any]) -> list[str]:
    response = await client.get(world["api"] + "/stages", headers=world["owner"]["headers"])
    body = await response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [s["name"] for s in items]


async def test_card_move_is_the_api_move(client: TestClient, world: dict[str, Any]) -> None:
    stages = await _stage_names(client, world)
    target = stages[1]
    move = world["board"] + "/move"
    http = world["owner_ui"]
    token = await csrf(http, world["board"])
    response = await http.post(
        move,
        data={"csrf_token": token, "issue": "2", "status": target},
        headers={"Accept": "application/json"},
    )
    assert response.status == 200, await response.text()
    issue = await (
        await client.get(world["api"] + "/issues/2", headers=world["owner"]["headers"])
    ).json()
    assert issue["status"] == target
    # the viewer is refused by the same rule (JSON problem for the board's script)
    token = await csrf(world["viewer_ui"], world["board"])
    response = await world["viewer_ui"].post(
        move,
        data={"csrf_token": token, "issue": "1", "status": target},
        headers={"Accept": "application/json"},
    )
    assert response.status == 403
    assert "role" in (await response.json())["detail"]
    # a stage that does not exist is a 422 problem, never a 500
    response = await http.post(
        move,
        data={"csrf_token": token, "issue": "1", "status": "nope"},
        headers={"Accept": "application/json"},
    )
    assert response.status in (403, 422)


async def test_issue_page_per_role(client: TestClient, world: dict[str, Any]) -> None:
    path = world["board"] + "/issues/1"
    owner_page = await (await world["owner_ui"].get(path)).text()
    assert "First card" in owner_page and 'id="edit-form"' in owner_page
    assert 'id="comment-form"' in owner_page and 'name="tags"' in owner_page
    viewer_page = await (await world["viewer_ui"].get(path)).text()
    assert "First card" in viewer_page
    assert 'id="edit-form"' not in viewer_page and 'id="comment-form"' not in viewer_page
    # the POSTs behind the hidden controls are refused anyway
    for target, data in ((path, {"title": "hacked"}), (path + "/comments", {"body": "hi"})):
        response = await post(world["viewer_ui"], target, data, via=path)
        assert response.status == 403, target
    issue = await (
        await client.get(world["api"] + "/issues/1", headers=world["owner"]["headers"])
    ).json()
    assert issue["title"] == "First card"


async def test_edit_issue_and_comment(client: TestClient, world: dict[str, Any]) -> None:
    path = world["board"] + "/issues/1"
    http = world["owner_ui"]
    response = await post(
        http,
        path,
        {"title": "Renamed", "description": "**bold**", "priority": "major", "tags": "ui, web"},
        via=path,
    )
    assert response.status == 303, await response.text()
    page = await (await http.get(path)).text()
    assert "Renamed" in page and "<strong>bold</strong>" in page and "major" in page
    assert '<span class="tag">ui</span>' in page
    response = await post(http, path + "/comments", {"body": "looks *good*"}, via=path)
    assert response.status == 303
    page = await (await http.get(path)).text()
    assert "looks <em>good</em>" in page and "Comments (1)" in page
    response = await post(http, path, {"assignees": world["owner"]["email"]}, via=path)
    assert response.status == 303
    page = await (await http.get(path)).text()
    assert f'value="{world["owner"]["email"]}"' in page and 'id="assignees"' in page
    response = await post(http, path, {"assignees": "nobody@example.com"}, via=path)
    assert response.status == 422 and "nobody@example.com" in await response.text()
    # a stale version is the API's 412, shown as a page
    response = await post(http, path, {"title": "Again", "version": "1"}, via=path)
    assert response.status == 412
    assert "412" in await response.text()


async def test_create_issue_from_the_form(client: TestClient, world: dict[str, Any]) -> None:
    http = world["owner_ui"]
    new = world["board"] + "/issues/new"
    assert "Create issue" in await (await http.get(new)).text()
    response = await post(
        http, world["board"] + "/issues", {"title": "From the UI", "priority": "minor"}, via=new
    )
    assert response.status == 303
    assert response.headers["Location"] == world["board"] + "/issues/3"
    response = await post(http, world["board"] + "/issues", {"title": ""}, via=new)
    assert response.status == 422
    assert (await world["viewer_ui"].get(new)).status == 403


async def test_search_page_with_highlights_and_error_position(world: dict[str, Any]) -> None:
    http = world["owner_ui"]
    search = f"/o/{world['org']['slug']}/search"
    page = await (await http.get(search, params={"q": "second"})).text()
    assert "WEB-2" in page and "<mark>" in page and "1 result" in page
    response = await http.get(search, params={"q": "status:"})
    assert response.status == 400
    page = await response.text()
    assert "Invalid query" in page and "at position" in page
    assert "status:\n       ^" in page


async def test_404_pages_for_unknown_and_foreign_orgs(
    client: TestClient, api: Api, world: dict[str, Any]
) -> None:
    stranger = await api.user()
    other_org = await api.org(stranger, slug=f"other{next(_n)}")
    await api.project(stranger, other_org, key="SEC")
    http = world["owner_ui"]
    for path in (
        f"/o/{other_org['slug']}",
        f"/o/{other_org['slug']}/p/SEC/issues/1",
        "/o/nosuchorg/p/WEB",
        world["board"] + "/issues/999",
        world["board"] + "/issues/abc",
    ):
        response = await http.get(path)
        assert response.status == 404, path
        assert "text/html" in response.headers["Content-Type"]
        assert "404" in await response.text()


async def test_backlog_and_sprints_per_role(client: TestClient, world: dict[str, Any]) -> None:
    backlog = world["board"] + "/backlog"
    http = world["owner_ui"]
    page = await (await http.get(backlog)).text()
    assert "WEB-1" in page and "WEB-2" in page and "Backlog (2)" in page
    assert 'id="sprint-form"' in page
    response = await post(
        http,
        world["board"] + "/sprints",
        {"name": "Sprint 1", "starts_at": "2026-01-05", "ends_at": "2026-01-19"},
        via=backlog,
    )
    assert response.status == 303, await response.text()
    sprints = await (
        await client.get(world["api"] + "/sprints", headers=world["owner"]["headers"])
    ).json()
    sprint_id = sprints["items"][0]["id"]
    response = await post(http, f"{world['board']}/sprints/{sprint_id}/start", {}, via=backlog)
    assert response.status == 303, await response.text()
    page = await (await http.get(backlog)).text()
    assert "Active sprint: Sprint 1" in page and 'id="complete-sprint"' in page
    assert "<polyline" in page  # the burndown chart
    viewer_page = await (await world["viewer_ui"].get(backlog)).text()
    assert "Active sprint: Sprint 1" in viewer_page
    assert 'id="complete-sprint"' not in viewer_page and 'id="sprint-form"' not in viewer_page
    url = f"{world['board']}/sprints/{sprint_id}/complete"
    assert (await post(world["viewer_ui"], url, {}, via=backlog)).status == 403
    assert (await post(http, url, {}, via=backlog)).status == 303
    assert "Active sprint" not in await (await http.get(backlog)).text()


async def test_project_settings_members_and_stages(
    client: TestClient, api: Api, world: dict[str, Any]
) -> None:
    settings = world["board"] + "/settings"
    http = world["owner_ui"]
    page = await (await http.get(settings)).text()
    assert 'id="member-form"' in page and 'id="stage-form"' in page
    assert world["viewer"]["email"] in page
    viewer_page = await (await world["viewer_ui"].get(settings)).text()
    assert 'id="member-form"' not in viewer_page and 'id="stage-form"' not in viewer_page
    # the viewer's POSTs are refused anyway
    for target, data in (
        (settings + "/stages", {"name": "Sneaky", "category": "todo"}),
        (f"{settings}/members/{world['viewer']['id']}", {"role": "admin"}),
    ):
        assert (await post(world["viewer_ui"], target, data, via=settings)).status == 403
    response = await post(
        http, settings + "/stages", {"name": "Review", "category": "in_progress"}, via=settings
    )
    assert response.status == 303
    assert 'data-stage="Review"' in await (await http.get(world["board"])).text()
    url = f"{settings}/members/{world['viewer']['id']}"
    assert (await post(http, url, {"role": "developer"}, via=settings)).status == 303
    page = await (await world["viewer_ui"].get(world["board"])).text()
    assert 'data-movable="true"' in page  # the new role holds on the next request
    newcomer = await api.user()
    response = await post(
        http, settings + "/members", {"email": newcomer["email"], "role": "viewer"}, via=settings
    )
    assert response.status == 422  # not an org member: the service's rule, shown as a page


def test_cards_html_escapes_every_value() -> None:
    from tracker.ui.views.board import cards_html

    card = (1, "<img src=x onerror=alert(1)>", "<b>", '"x', None)
    html = str(cards_html([card], 'W"><script>', '/o/a"/p/B/issues/'))
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert 'id="card-W&quot;&gt;&lt;script&gt;-1"' in html and "/o/a&quot;/p/B/issues/1" in html
    plain = str(cards_html([(7, "ok", "task", "normal", None)], "WEB", "/u/"))
    assert 'id="card-WEB-7"' in plain and ">WEB-7</a>" in plain


async def test_the_issue_page_shows_attachments_with_thumbnails(
    client: TestClient, world: dict[str, Any]
) -> None:
    import io

    from aiohttp import FormData
    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (640, 480), "blue").save(picture, "PNG")
    form = FormData()
    form.add_field("file", io.BytesIO(picture.getvalue()), filename="shot.png")
    form.add_field("file", io.BytesIO(b"<svg><script>x()</script></svg>"), filename="a.svg")
    response = await client.post(f"{world['api']}/issues/1/attachments", data=form,
                                 headers=world["owner"]["headers"])  # fmt: skip
    assert response.status == 201, await response.text()
    image, svg = (await response.json())["items"]
    page = await (await world["viewer_ui"].get(f"{world['board']}/issues/1")).text()
    file_url = f"{world['board']}/attachments/{image['id']}"
    assert f'src="{file_url}/thumbnail"' in page and "shot.png" in page and "a.svg" in page
    thumb = await world["viewer_ui"].get(file_url + "/thumbnail")
    assert thumb.status == 200 and thumb.headers["Content-Type"] == "image/png"
    served = await world["viewer_ui"].get(f"{world['board']}/attachments/{svg['id']}")
    assert served.status == 200 and await served.read() == b"<svg><script>x()</script></svg>"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["Content-Security-Policy"].startswith("sandbox")  # not the page CSP
    outsider = await session(client)
    try:
        stranger = await Api(client).user()
        await sign_in(outsider, stranger["email"])
        assert (await outsider.get(file_url)).status == 404
    finally:
        await outsider.close()
