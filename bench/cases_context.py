"""The issue context dossier, in-process, beside reading the same issue.

    python -m bench.cases_context --rounds 400

Setup (real services on a fresh data dir): org `bench`, projects WEB and a private
OPS; one issue with 100 comments (about 300 characters each), 20 relations (ten
into OPS, so the visibility check runs on each), a parent and three sub-issues,
and a few status changes for the history summary. Each round times, alternating
with rotating order:

* get: `services.issues.get_issue` (what `GET …/issues/{n}` calls);
* context: `services.context.issue_context` at the default budget (8,000 chars),
  read as the org owner and as a plain member who cannot see OPS.

Then the same two reads over HTTP (the real app on 127.0.0.1, one keep-alive
client): `GET …/issues/{n}` and `GET …/issues/{n}/context`.

Goal (issue 20): the dossier p50 <= 10 ms in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tracker.core import open_core
from tracker.domain.changes import Actor, Origin
from tracker.domain.models.accounts import RegisterIn
from tracker.domain.models.comments import CommentIn, RelationIn
from tracker.domain.models.issues import IssueCreate, IssuePatch
from tracker.domain.models.orgs import OrgIn, OrgMemberIn, ProjectIn
from tracker.domain.permissions import Permission
from tracker.services import accounts, comments, context, issues, members, orgs, projects
from tracker.services.access import ProjectAccess
from tracker.services.accounts import Principal
from tracker.services.acting import act_as
from tracker.services.relations import create_relation
from tracker.services.runtime import Core
from tracker.settings import Settings


async def fill(core: Core) -> tuple[ProjectAccess, ProjectAccess, int]:
    """The world above; returns (owner's access, member's access, the issue's number)."""
    owner = await accounts.register(core, RegisterIn(email="o@example.com", password="x" * 12))
    await accounts.register(core, RegisterIn(email="m@example.com", password="x" * 12))
    actor = Actor(owner.id, Origin.CLI)
    await orgs.create_org(core, Principal(owner.id), OrgIn(name="Bench", slug="bench"), actor)
    return await _fill_projects(core)


async def _fill_projects(core: Core) -> tuple[ProjectAccess, ProjectAccess, int]:
    org_access, actor = await act_as(core, "bench", None, "o@example.com", Origin.CLI)
    await members.add_org_member(core, org_access, OrgMemberIn(email="m@example.com"), actor)
    await projects.create_project(core, org_access, ProjectIn(name="Web", key="WEB"), actor)
    private = ProjectIn(name="Ops", key="OPS", visibility="private")
    await projects.create_project(core, org_access, private, actor)
    web, _ = await act_as(core, "bench", "WEB", "o@example.com", Origin.CLI)
    ops, _ = await act_as(core, "bench", "OPS", "o@example.com", Origin.CLI)
    parent = await issues.create_issue(core, web, IssueCreate(title="Epic"), actor)
    text = "A paragraph of the description with `code` and <b>html</b>. " * 20
    issue = await issues.create_issue(
        core, web, IssueCreate(title="The issue", description=text, parent=parent.number), actor
    )
    for n in range(3):
        await issues.create_issue(
            core, web, IssueCreate(title=f"Sub {n}", parent=issue.number), actor
        )
    for n in range(20):
        target = await issues.create_issue(
            core, ops if n % 2 else web, IssueCreate(title=f"Related {n}"), actor
        )
        link = RelationIn(type="relates_to", issue=target.key)
        await create_relation(core, web, issue.number, link, actor)
    for n in range(100):
        body = f"Comment {n}: " + "words of a reasonably long comment. " * 8
        await comments.create_comment(core, web, issue.number, CommentIn(body=body), actor)
    for status in ("In Progress", "Open", "In Progress"):
        await issues.update_issue(core, web, issue.number, IssuePatch(status=status), actor)
    # with a permission, act_as gives the person's real roles (OPS stays hidden)
    member, _ = await act_as(
        core, "bench", "WEB", "m@example.com", Origin.CLI, permission=Permission.PROJECT_READ
    )
    return web, member, issue.number


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def run(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), log_level="warning")
        async with open_core(settings, background=False) as core:
            owner, member, number = await fill(core)
            sides: dict[str, Callable[[], Awaitable[object]]] = {
                "get issue": lambda: issues.get_issue(core, owner, number),
                "context (owner)": lambda: context.issue_context(core, owner, number),
                "context (member)": lambda: context.issue_context(core, member, number),
            }
            size = len(await context.issue_context(core, owner, number))
            times = await rotate(sides, rounds)
        print(f"issue with 100 comments, 20 relations; dossier {size} chars; {rounds} rounds")
        report("in-process", times)
        report("HTTP", await over_http(settings, number, rounds))


async def rotate(
    sides: dict[str, Callable[[], Awaitable[object]]], rounds: int
) -> dict[str, list[float]]:
    """Time each side once per round, the order rotating, after a warm-up."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for _ in range(20):
        for name in names:
            await sides[name]()
    for n in range(rounds):
        shift = n % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(await timed(sides[name]))
    return times


async def over_http(settings: Settings, number: int, rounds: int) -> dict[str, list[float]]:
    import aiohttp
    from aiohttp import web

    from tracker.http.app import create_app

    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with aiohttp.ClientSession() as http:
            login = {"email": "o@example.com", "password": "x" * 12}
            async with http.post(f"{base}/auth/login", json=login) as response:
                token = (await response.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            issue = f"{base}/orgs/bench/projects/WEB/issues/{number}"

            def get(url: str) -> Callable[[], Awaitable[object]]:
                async def fetch() -> object:
                    async with http.get(url, headers=headers) as response:
                        assert response.status == 200, response.status
                        return await response.read()

                return fetch

            return await rotate(
                {"GET issue": get(issue), "GET context": get(issue + "/context")}, rounds
            )
    finally:
        await runner.cleanup()


def report(title: str, times: dict[str, list[float]]) -> None:
    print(title)
    for name, values in times.items():
        values.sort()
        p50 = statistics.median(values)
        p99 = values[int(len(values) * 0.99) - 1]
        print(f"  {name:18} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    asyncio.run(run(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
