"""The web UI's board page: HTML vs the JSON board in the same run, and first paint.

``python -m bench.cases_ui [--issues 2000] [--seconds 3] [--rounds 3]``

* req/s of ``GET /o/board/p/BOARD`` (the HTML page, cookie session) vs
  ``GET /api/v1/orgs/board/projects/BOARD/board`` (JSON, bearer), both with 50 cards
  per column, from a real server on 127.0.0.1, 8 concurrent clients, alternating
  rounds of ``--seconds`` each; goal: HTML >= 70% of JSON's req/s (median of rounds).
* with ``/usr/bin/chromium`` present: the board page's navigation-to-``load`` time in
  Chromium (Playwright), ``?limit=200`` cards per column, median of 5 loads; goal
  <= 300 ms on a 100,000-issue project (``--issues 100000``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.api import PASSWORD
from bench.cases_boards import EMAIL, free_port, seed
from tracker.http.app import create_app
from tracker.settings import Settings

CLIENTS = 8


async def _rate(session: aiohttp.ClientSession, url: str, headers: dict[str, str],
                seconds: float) -> float:  # fmt: skip
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                assert resp.status == 200, resp.status
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return done / (time.perf_counter() - began)


async def _sign_in(session: aiohttp.ClientSession, base: str) -> None:
    async with session.get(base + "/login") as resp:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
    assert token is not None
    form = {"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD}
    async with session.post(base + "/login", data=form, allow_redirects=False) as resp:
        assert resp.status == 303, resp.status


async def _first_paint(base: str, loads: int) -> list[float] | None:
    if not Path("/usr/bin/chromium").exists():
        return None
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=["--no-sandbox"])  # fmt: skip
        page = await browser.new_page(viewport={"width": 1440, "height": 900})
        await page.goto(base + "/login")
        await page.fill("input[name=email]", EMAIL)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(base + "/")
        times = []
        for _ in range(loads + 1):  # the first load warms the static files' cache
            await page.goto(base + "/o/board/p/BOARD?limit=200", wait_until="load")
            times.append(await page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return n.loadEventEnd - n.startTime; }"
            ))  # fmt: skip
        await browser.close()
        return times[1:]


async def main(issues: int, seconds: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), log_level="warning", signups_per_address=0)
        await seed(settings, issues)
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        try:
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                login = {"email": EMAIL, "password": PASSWORD}
                async with session.post(base + "/api/v1/auth/login", json=login) as resp:
                    bearer = {"Authorization": "Bearer " + (await resp.json())["access_token"]}
                await _sign_in(session, base)
                html_url = base + "/o/board/p/BOARD?limit=50"
                json_url = base + "/api/v1/orgs/board/projects/BOARD/board?limit=50"
                html, js = [], []
                for _ in range(rounds):
                    js.append(await _rate(session, json_url, bearer, seconds))
                    html.append(await _rate(session, html_url, {}, seconds))
            ratios = [h / j for h, j in zip(html, js, strict=True)]
            print(f"board, {issues:,} issues, 50 cards/column, {CLIENTS} clients, "
                  f"{rounds} x {seconds:.0f} s rounds")  # fmt: skip
            print(f"  JSON board  req/s: {', '.join(f'{r:,.0f}' for r in js)}")
            print(f"  HTML board  req/s: {', '.join(f'{r:,.0f}' for r in html)}")
            median = statistics.median(ratios)
            print(f"  HTML / JSON median {median:.0%} (goal >= 70%): "
                  f"{'met' if median >= 0.7 else 'NOT met'}")  # fmt: skip
            paint = await _first_paint(base, 5)
            if paint is None:
                print("  first paint: skipped (no /usr/bin/chromium)")
            else:
                p50 = statistics.median(paint)
                print(f"  first paint (navigation to load, 200 cards/column) in Chromium: "
                      f"median {p50:.0f} ms over {len(paint)} loads "
                      f"({', '.join(f'{t:.0f}' for t in paint)}) (goal <= 300 ms)")  # fmt: skip
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.issues, args.seconds, args.rounds))
