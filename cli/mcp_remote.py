"""`rhythm mcp --url`: the same tools against a running Rhythm server, over its HTTP API.

Arguments are validated by the same models as on a data directory (cli.mcp_tools),
then sent to the route each tool stands for; the server applies its permission
table as the signed-in person, and its problem details come back as tool errors.
Results have the same shapes as the data-directory door's. Signing in: with
RHYTHM_PASSWORD the server logs `--as EMAIL` in and renews the access token with
the refresh token when it expires; with RHYTHM_TOKEN it uses that access token as
it is (it stops working when it expires).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from cli.mcp_tools import (
    Tool,
    api_body,
    board_json,
    hits_json,
    issue_ref,
    org_of,
    project_json,
)
from tracker.domain.models.comments import CommentIn
from tracker.domain.models.issues import IssueCreate, IssuePatch
from tracker.errors import RhythmError, Unauthorized

API = "/api/v1"


class RemoteError(RhythmError):
    """A problem the server answered with, passed on as it came."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(str(problem.get("detail") or problem.get("title") or "error"))
        self.problem = problem

    def to_problem(self) -> dict[str, Any]:
        return self.problem


@dataclass
class RemoteSession:
    """A signed-in HTTP client of one server (`url` is its root, without /api/v1)."""

    url: str
    http: aiohttp.ClientSession
    org: str | None = None
    email: str | None = None
    password: str | None = None
    access: str | None = None
    refresh: str | None = None

    async def sign_in(self) -> None:
        if self.password is None:
            if self.access is None:
                raise Unauthorized("set RHYTHM_PASSWORD (with --as) or RHYTHM_TOKEN")
            return
        body = {"email": self.email, "password": self.password}
        self._keep(await self._send("POST", "/auth/login", json=body, signed=False))

    def _keep(self, tokens: dict[str, Any]) -> None:
        self.access, self.refresh = tokens["access_token"], tokens["refresh_token"]

    async def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """One API call; an expired access token is renewed once with the refresh token."""
        try:
            return await self._send(method, path, json=json, params=params)
        except RemoteError as error:
            if error.problem.get("status") != 401 or self.refresh is None:
                raise
        self._keep(
            await self._send(
                "POST", "/auth/refresh", json={"refresh_token": self.refresh}, signed=False
            )
        )
        return await self._send(method, path, json=json, params=params)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        signed: bool = True,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.access}"} if signed and self.access else {}
        query = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in (params or {}).items()
            if v is not None
        }
        async with self.http.request(
            method, self.url + API + path, json=json, params=query, headers=headers
        ) as response:
            if response.status >= 400:
                raise RemoteError(await _problem(response))
            if response.status == 204:
                return None
            if response.content_type == "application/json":
                return await response.json()
            return await response.text()

    async def execute(self, tool: Tool, args: Any, raw: dict[str, Any]) -> Any:
        return await REMOTE[tool.name](self, args, raw)


async def _problem(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        problem = await response.json(content_type=None)
    except ValueError:
        problem = None
    if isinstance(problem, dict):
        return problem
    return {"status": response.status, "title": response.reason or "error"}


def _seg(text: str) -> str:
    """One path segment: nothing in an argument can add a segment or a query."""
    return quote(text, safe="")


def _project_path(session: RemoteSession, args: Any, project: str) -> str:
    return f"/orgs/{_seg(org_of(args, session.org))}/projects/{_seg(project)}"


def _issue_path(session: RemoteSession, args: Any) -> str:
    project, number = issue_ref(args.key)
    return f"{_project_path(session, args, project)}/issues/{number}"


# --- the tools, as HTTP calls -------------------------------------------------------------


async def search_issues(session: RemoteSession, args: Any, raw: dict[str, Any]) -> Any:
    params = {"q": args.q or None, "limit": args.limit, "cursor": args.cursor}
    if args.project:
        path = _project_path(session, args, args.project) + "/issues"
    else:
        path = f"/orgs/{_seg(org_of(args, session.org))}/issues"
    page = await session.request("GET", path, params=params)
    return hits_json(page["items"], page["next_cursor"])


async def get_issue(session: RemoteSession, args: Any, raw: dict[str, Any]) -> Any:
    path = _issue_path(session, args) + "/context"
    return await session.request("GET", path, params={"max_chars": args.max_chars})


async def create_issue(session: RemoteSession, args: Any, raw: dict[str, Any]) -> Any:
    body = api_body(IssueCreate, raw).model_dump(mode="json", exclude_unset=True)
    path = _project_path(session, args, args.project) + "/issues"
    return await session.request("POST", path, json=body)


async def update_issue(session: RemoteSession, args: Any, raw: dict[str, Any]) -> Any:
    body = api_body(IssuePatch, raw).model_dump(mode="json", exclude_unset=True)
    return await session.request("PATCH", _issue_path(session, args), json=body)


async def move_issue(session: RemoteSession, args: Any, raw: dict[str, Any]) -> Any:
    body = {"status": args.status, "before": args.before, "after": args.after}
    body = {name: value for name, value in body.items() if value is not None}
    return await session.request("PATCH", _issue_path(session, args), json=body)


async def add_comment(session: RemoteSession, args: Any, raw: dict[str, Any]) -> Any:
    body = CommentIn(body=args.body).model_dump(mode="json")
    return await session.request("POST", _issue_path(session, args) + "/comments", json=body)


async def list_projects(session: RemoteSession, args: Any, raw: dict[str, Any]) -> Any:
    org = args.org or session.org
    slugs = [org] if org else [o["slug"] for o in await _all(session, "/orgs")]
    found = []
    for slug in slugs:
        for project in await _all(session, f"/orgs/{_seg(slug)}/projects"):
            found.append(project_json(slug, project))
    return {"projects": found}


async def _all(session: RemoteSession, path: str) -> list[dict[str, Any]]:
    """Every item of a paginated list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await session.request("GET", path, params={"limit": 200, "cursor": cursor})
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def board(session: RemoteSession, args: Any, raw: dict[str, Any]) -> Any:
    path = _project_path(session, args, args.project) + "/board"
    shown = await session.request("GET", path, params={"limit": args.limit, "q": args.q})
    return board_json(args.project.upper(), shown)


Runner = Callable[[RemoteSession, Any, dict[str, Any]], Awaitable[Any]]
REMOTE: dict[str, Runner] = {
    "search_issues": search_issues,
    "get_issue": get_issue,
    "create_issue": create_issue,
    "update_issue": update_issue,
    "move_issue": move_issue,
    "add_comment": add_comment,
    "list_projects": list_projects,
    "board": board,
}
