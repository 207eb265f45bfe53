"""Real-browser tests: Playwright (pinned) driving Debian's Chromium at /usr/bin/chromium.

Never a downloaded browser. Playwright's async API runs on the same event loop as
pytest-aiohttp's server (an own fixture, not pytest-playwright's sync fixtures, which
break later asyncio tests in the same process; docs/ui.md). Screenshots of the board and
the issue page go to a folder the run prints (RHYTHM_UI_SCREENSHOTS overrides it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import make_settings
from tracker.http.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(
        os.environ.get("RHYTHM_UI_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "ui-shots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@pytest.fixture
async def app(tmp_path: Path) -> web.Application:
    return create_app(make_settings(tmp_path / "data"))


@pytest.fixture
async def base_url(aiohttp_server: Any, app: web.Application) -> str:
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def _setup_project(page: Any, base_url: str, slug: str, key: str) -> dict[str, str]:
    """Sign up, create an org, a project and one issue through the UI; a bearer header."""
    email = f"{slug}@example.com"
    await _sign_up(page, base_url, email)
    await page.fill("input[name=name]", slug.title())
    await page.fill("input[name=slug]", slug)
    await page.click("text=Create organization")
    await page.wait_for_url(f"**/o/{slug}")
    await page.fill("input[name=name]", "Project " + key)
    await page.fill("input[name=key]", key)
    await page.click("text=Create project")
    await page.wait_for_url(f"**/p/{key}")
    await page.click("#new-issue")
    await page.fill("input[name=title]", "Only forward")
    await page.click("text=Create issue")
    await page.wait_for_url("**/issues/1")
    credentials = {"email": email, "password": "correct horse"}
    login = await page.request.post(base_url + "/api/v1/auth/login", data=credentials)
    return {"Authorization": "Bearer " + (await login.json())["access_token"]}


async def _api_setup(page: Any, base_url: str, slug: str, key: str) -> dict[str, str]:
    """An account, an org and a project through the API; the page signs in with the form."""
    api, email = page.request, f"{slug}@example.com"
    credentials = {"email": email, "password": "correct horse"}
    assert (await api.post(base_url + "/api/v1/auth/register", data=credentials)).ok
    login = await api.post(base_url + "/api/v1/auth/login", data=credentials)
    headers = {"Authorization": "Bearer " + (await login.json())["access_token"]}
    org = {"name": slug.title(), "slug": slug}
    assert (await api.post(base_url + "/api/v1/orgs", data=org, headers=headers)).ok
    project = {"name": "Project " + key, "key": key}
    assert (await api.post(f"{base_url}/api/v1/orgs/{slug}/projects", data=project,
                           headers=headers)).ok  # fmt: skip
    await page.goto(base_url + "/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", "correct horse")
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")
    return headers


async def _sign_up(page: Any, base_url: str, email: str) -> None:
    await page.goto(base_url + "/signup")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", "correct horse")
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")


async def _column_of(page: Any, key: str) -> str:
    return await page.locator(f"#card-{key}").evaluate("el => el.closest('ol.cards').dataset.stage")


async def test_sign_up_to_drag_and_drop_search_and_sign_out(
    browser: Any, base_url: str, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await _sign_up(page, base_url, "ada@example.com")
    await page.fill("input[name=name]", "Acme")
    await page.fill("input[name=slug]", "acme")
    await page.click("text=Create organization")
    await page.wait_for_url(base_url + "/o/acme")
    await page.fill("input[name=name]", "Website")
    await page.fill("input[name=key]", "WEB")
    await page.click("text=Create project")
    await page.wait_for_url(base_url + "/o/acme/p/WEB")
    for title, priority in (("Login page", "major"), ("Fix the footer", "minor"),
                            ("Crash on save", "critical")):  # fmt: skip
        await page.goto(base_url + "/o/acme/p/WEB")
        await page.click("#new-issue")
        await page.fill("input[name=title]", title)
        await page.select_option("select[name=priority]", priority)
        await page.click("text=Create issue")
        await page.wait_for_url("**/issues/*")
    await page.goto(base_url + "/o/acme/p/WEB")
    first = await _column_of(page, "WEB-1")
    target = page.locator("ol.cards").nth(1)
    target_stage = await target.get_attribute("data-stage")
    assert target_stage != first
    async with page.expect_response("**/move") as moved:
        await page.locator("#card-WEB-1").drag_to(target)
    assert (await moved.value).status == 200
    await page.reload()
    assert await _column_of(page, "WEB-1") == target_stage  # it stayed after a reload
    counts = await page.locator("[data-count]").all_inner_texts()
    assert sum(int(c) for c in counts) == 3
    await page.screenshot(path=str(shots / "board.png"), full_page=True)

    await page.click("text=WEB-3")
    await page.wait_for_url("**/issues/3")
    await page.fill("textarea[name=body]", "Seen it **twice** <script>alert(1)</script>")
    await page.click("#comment-form button")  # htmx swaps the comment list in place
    await page.wait_for_selector("text=Comments (1)")
    assert await page.locator("#comments strong").inner_text() == "twice"
    await page.screenshot(path=str(shots / "issue.png"), full_page=True)

    await page.goto(base_url + "/o/acme/search?q=" + "priority%3A%20title%3Alogin")
    error = page.locator("#query-error")
    assert "position" in await error.inner_text()
    await page.fill("#search-q", "crash")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("ol.hits mark")
    assert "WEB-3" in await page.locator("ol.hits").inner_text()

    # the API reference: Swagger UI from the package renders every operation, CSP intact
    await page.goto(base_url + "/api/v1/docs")
    # a 1.5 MB bundle to parse: 10 s was not always enough on the shared box (load 13)
    await page.wait_for_selector(".opblock", timeout=30000)
    assert await page.locator(".opblock").count() > 50

    await page.goto(base_url + "/o/acme")
    await page.click("#sign-out")
    await page.wait_for_url(base_url + "/login")
    await page.goto(base_url + "/o/acme/p/WEB")
    assert "/login" in page.url
    assert not [e for e in errors if "Content Security Policy" in e], errors
    with capsys.disabled():
        print(f"\nUI screenshots: {shots}")


async def test_refused_move_snaps_back_with_the_message(
    browser: Any, base_url: str, shots: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await _sign_up(page, base_url, "bob@example.com")
    api = page.request  # same cookies; the UI's own forms do the setup
    await page.fill("input[name=name]", "Beta")
    await page.fill("input[name=slug]", "beta")
    await page.click("text=Create organization")
    await page.wait_for_url("**/o/beta")
    await page.fill("input[name=name]", "Ops")
    await page.fill("input[name=key]", "OPS")
    await page.click("text=Create project")
    await page.wait_for_url("**/p/OPS")
    await page.click("#new-issue")
    await page.fill("input[name=title]", "Only forward")
    await page.click("text=Create issue")
    await page.wait_for_url("**/issues/1")
    # a transition rule through the API (bearer token): only first -> second stage allowed
    credentials = {"email": "bob@example.com", "password": "correct horse"}
    login = await api.post(base_url + "/api/v1/auth/login", data=credentials)
    headers = {"Authorization": "Bearer " + (await login.json())["access_token"]}
    stages = await (await api.get(base_url + "/api/v1/orgs/beta/projects/OPS/stages",
                                  headers=headers)).json()  # fmt: skip
    items = stages["items"] if isinstance(stages, dict) else stages
    rule = {"from_stage_id": items[0]["id"], "to_stage_id": items[1]["id"]}
    put = await api.put(base_url + "/api/v1/orgs/beta/projects/OPS/transitions",
                        data={"rules": [rule]}, headers=headers)  # fmt: skip
    assert put.status == 200, await put.text()

    await page.goto(base_url + "/o/beta/p/OPS")
    last = page.locator("ol.cards").nth(2)  # the rule allows only the first to the second
    async with page.expect_response("**/move") as moved:
        await page.locator("#card-OPS-1").drag_to(last)
    assert (await moved.value).status == 409
    flash = page.locator("#flash")
    await flash.wait_for(state="visible")
    assert await flash.inner_text()
    assert await _column_of(page, "OPS-1") == items[0]["name"]  # snapped back
    await page.screenshot(path=str(shots / "board-refused-move.png"))

    # with swim lanes a card drags between the columns of its own lane (the allowed move)
    await page.goto(base_url + "/o/beta/p/OPS?lanes=priority")
    lane = page.locator("section.lane").first
    async with page.expect_response("**/move") as moved:
        await page.locator("#card-OPS-1").drag_to(lane.locator("ol.cards").nth(1))
    assert (await moved.value).status == 200
    await page.reload()
    assert await _column_of(page, "OPS-1") == items[1]["name"]


async def test_a_change_through_the_api_appears_on_an_open_board_and_issue_page(
    browser: Any, app: web.Application, base_url: str
) -> None:
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    if "/api/v1/orgs/{org}/ws" not in paths:
        pytest.skip("the WebSocket hub (SPEC §7) is not on this branch yet")
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    headers = await _setup_project(page, base_url, "live", "LIV")
    issue_page = await context.new_page()  # a second tab, same session
    await issue_page.goto(base_url + "/o/live/p/LIV/issues/1")
    await page.goto(base_url + "/o/live/p/LIV")
    for tab in (page, issue_page):
        await tab.wait_for_selector("body[data-live-ready='1']", timeout=5000)
    url = base_url + "/api/v1/orgs/live/projects/LIV/issues"
    created = await page.request.post(url, data={"title": "Made elsewhere"}, headers=headers)
    assert created.status == 201
    patched = await page.request.patch(url + "/1", data={"title": "Renamed by the API"},
                                       headers=headers)  # fmt: skip
    assert patched.status == 200
    # within a second, without a reload
    await page.wait_for_selector("#card-LIV-2 >> text=Made elsewhere", timeout=1500)
    await page.wait_for_selector("#card-LIV-1 >> text=Renamed by the API", timeout=1500)
    await issue_page.wait_for_selector("#issue-title >> text=Renamed by the API", timeout=1500)
    # the board still drags after its swap
    async with page.expect_response("**/move") as moved:
        await page.locator("#card-LIV-2").drag_to(page.locator("ol.cards").nth(1))
    assert (await moved.value).status == 200


async def _overflow(page: Any) -> int:
    """How far the page itself scrolls sideways (0: nothing sticks out of the viewport)."""
    return int(await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    ))  # fmt: skip


async def _wide(page: Any) -> list[str]:
    """The elements that stick out on the right (to name the culprit when the test fails)."""
    return list(await page.evaluate(
        """() => { const w = document.documentElement.clientWidth; const out = [];
        for (const el of document.querySelectorAll('body *')) {
          const r = el.getBoundingClientRect();
          if (r.right > w + 0.5 && !el.closest('#board, .lane-row'))
            out.push(el.tagName + '#' + el.id + '.' + el.className + ' ' + Math.round(r.right));
        } return out.slice(0, 8); }"""
    ))  # fmt: skip


async def test_phone_width_board_and_issue_page_do_not_overflow(
    browser: Any, base_url: str, shots: Path
) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844},
                                        device_scale_factor=1, is_mobile=True,
                                        has_touch=True)  # fmt: skip
    page = await context.new_page()
    headers = await _api_setup(page, base_url, "phone", "PHN")  # the API is quicker than forms
    url = base_url + "/api/v1/orgs/phone/projects/PHN/issues"
    for n in range(7):
        title = f"A rather long card title number {n} that wraps " + "x" * 40
        assert (await page.request.post(url, data={"title": title}, headers=headers)).status == 201
    relation = {"type": "relates_to", "issue": 2}
    assert (await page.request.post(url + "/1/relations", data=relation,
                                    headers=headers)).status == 201  # fmt: skip
    for path in ("/o/phone/p/PHN", "/o/phone/p/PHN?lanes=priority", "/o/phone/p/PHN/issues/1",
                 "/o/phone/p/PHN/settings", "/o/phone/search?q=card"):  # fmt: skip
        await page.goto(base_url + path)
        assert await _overflow(page) == 0, (path, await _wide(page))
    # the board's columns scroll inside their own container, not the page
    await page.goto(base_url + "/o/phone/p/PHN")
    board = page.locator("#board")
    widths = await board.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert widths[0] > widths[1]  # more columns than fit: the board scrolls sideways
    await page.screenshot(path=str(shots / "board-phone.png"))
    # every nav control is on screen and works
    controls = "header nav a, header nav button, header nav input:not([type=hidden])"
    for control in await page.locator(controls).all():
        box = await control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    await page.fill("#global-search", "card")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/search?q=card")
    await page.click("header nav >> text=Phone")  # the org link
    await page.wait_for_url(base_url + "/o/phone")
    await page.goto(base_url + "/o/phone/p/PHN/issues/1")
    await page.screenshot(path=str(shots / "issue-phone.png"), full_page=True)
    await page.click("#sign-out")
    await page.wait_for_url("**/login")
    await context.close()
