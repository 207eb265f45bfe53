"""`rhythm mcp`: the SDK's own stdio client against the real command on a real data dir."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.conftest import make_settings
from tracker.core import open_core
from tracker.domain.changes import Actor
from tracker.domain.models.accounts import RegisterIn
from tracker.domain.models.orgs import OrgIn, OrgMemberIn, ProjectIn, ProjectMemberIn
from tracker.services import accounts, members, orgs, projects
from tracker.services.accounts import Principal
from tracker.services.acting import act_as, person

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {
    "search_issues",
    "get_issue",
    "create_issue",
    "update_issue",
    "add_comment",
    "move_issue",
    "list_projects",
    "board",
}


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    """Org `acme` with project WEB: ann owns it, vic is a viewer in WEB. Closed again,
    so the server process can lock the directory."""
    settings = make_settings(tmp_path / "data")
    async with open_core(settings, background=False) as core:
        ids = {}
        for name in ("ann", "vic"):
            user = await accounts.register(
                core, RegisterIn(email=f"{name}@example.com", password="x" * 12)
            )
            ids[name] = user.id
        actor = Actor(ids["ann"], "cli")
        await orgs.create_org(core, Principal(ids["ann"]), OrgIn(name="Acme", slug="acme"), actor)
        access, _ = await act_as(core, "acme", None, "ann@example.com", "cli")
        await members.add_org_member(core, access, OrgMemberIn(email="vic@example.com"), actor)
        await projects.create_project(core, access, ProjectIn(name="Web", key="WEB"), actor)
        web, _ = await act_as(core, "acme", "WEB", "ann@example.com", "cli")
        viewer = ProjectMemberIn(email="vic@example.com", role="viewer")
        await members.add_project_member(core, web, viewer, actor)
    return settings.data_dir


@asynccontextmanager
async def connect(
    data_dir: Path | None, who: str, url: str | None = None, password: str | None = None
) -> AsyncIterator[ClientSession]:
    """The SDK's stdio client on `rhythm mcp` (a data dir, or `--url` with a password)."""
    where = ["--url", url] if url else ["--data-dir", str(data_dir)]
    env = {
        "RHYTHM_LOG_LEVEL": "warning",
        "RHYTHM_ARGON2_TIME_COST": "1",
        "RHYTHM_ARGON2_MEMORY_KIB": "8192",
    }
    if password:
        env["RHYTHM_PASSWORD"] = password
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli.main", "mcp", *where, "--as", who, "--org", "acme"],
        cwd=str(ROOT),
        env=env,
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, name: str, **arguments: Any) -> tuple[bool, Any]:
    """(ok, result): JSON results decoded, Markdown as text."""
    result = await session.call_tool(name, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return not result.is_error, value


async def test_an_assistant_searches_creates_comments_and_moves(data_dir: Path) -> None:
    async with connect(data_dir, "ann@example.com") as session:
        listed = await session.list_tools()
        assert {tool.name for tool in listed.tools} == TOOLS
        create = next(tool for tool in listed.tools if tool.name == "create_issue")
        # the schema is the API's IssueCreate plus where to act
        assert {"title", "priority", "custom_fields", "project"} <= set(
            create.input_schema["properties"]
        )
        assert "title" in create.input_schema["required"]

        ok, found = await call(session, "list_projects")
        assert ok and found["projects"][0]["key"] == "WEB"
        ok, issue = await call(
            session,
            "create_issue",
            project="WEB",
            title="Login fails on Safari",
            description="Steps:\n```\nopen /login\n```",
            priority="major",
        )
        assert ok, issue
        assert issue["key"] == "WEB-1" and issue["priority"] == "major"

        ok, hits = await call(session, "search_issues", q="safari")
        assert ok and [hit["key"] for hit in hits["items"]] == ["WEB-1"]
        ok, comment = await call(session, "add_comment", key="WEB-1", body="Reproduced on 17.2")
        assert ok and comment["body"] == "Reproduced on 17.2"
        ok, moved = await call(session, "move_issue", key="WEB-1", status="In Progress")
        assert ok and moved["status"] == "In Progress"
        ok, updated = await call(session, "update_issue", key="WEB-1", priority="critical")
        assert ok and updated["priority"] == "critical" and updated["version"] == 3

        ok, shown = await call(session, "board", project="WEB")
        column = next(c for c in shown["columns"] if c["stage"] == "In Progress")
        assert ok and column["count"] == 1 and column["cards"][0]["key"] == "WEB-1"
        ok, dossier = await call(session, "get_issue", key="WEB-1")
        assert ok and dossier.startswith("# WEB-1: Login fails on Safari")
        assert "Reproduced on 17.2" in dossier and "- **Status:** In Progress" in dossier

    # what the tools wrote went through the services, as ann, marked as the MCP door
    async with open_core(make_settings(data_dir), background=False) as core:
        access, _ = await act_as(core, "acme", "WEB", None, "system")
        async with core.tenants.lease(access.org.id) as db:
            rows = await db.read(
                lambda conn: conn.execute(
                    "SELECT actor, origin, meta FROM changes WHERE entity IN ('issue', 'comment')"
                ).fetchall()
            )
        ann = await person(core, "ann@example.com")
    assert len(rows) >= 4
    assert {(r[0], r[1], json.loads(r[2])["via"]) for r in rows} == {(ann, "cli", "mcp")}


async def test_a_viewer_gets_a_tool_error_naming_the_permission(data_dir: Path) -> None:
    async with connect(data_dir, "vic@example.com") as session:
        ok, problem = await call(session, "create_issue", project="WEB", title="Nope")
        assert not ok
        assert problem["status"] == 403 and problem["permission"] == "issue.create"
        assert "issue.create" in problem["detail"]
        ok, found = await call(session, "search_issues", q="")
        assert ok and found["items"] == []  # reading is still allowed


async def test_malformed_arguments_are_tool_errors_and_the_server_lives_on(
    data_dir: Path,
) -> None:
    async with connect(data_dir, "ann@example.com") as session:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("create_issue", {"project": "WEB", "title": 42}, "title"),
            ("create_issue", {"project": "WEB"}, "title"),
            ("create_issue", {"project": "WEB", "title": "x", "bogus": 1}, "bogus"),
            ("get_issue", {"key": "not a key"}, "key"),
            ("get_issue", {"key": "WEB-999"}, "issue not found"),
            ("move_issue", {"key": "WEB-1", "status": "Nowhere"}, "status"),
            ("search_issues", {"q": "priority:"}, "position"),
            ("board", {"project": "NOPE"}, "not found"),
            ("no_such_tool", {}, "no tool named"),
        ]
        for name, arguments, expected in cases:
            ok, problem = await call(session, name, **arguments)
            assert not ok, (name, arguments)
            assert expected in json.dumps(problem), (name, problem)
        ok, issue = await call(session, "create_issue", project="WEB", title="Still alive")
        assert ok and issue["key"] == "WEB-1"


async def test_url_mode_uses_the_running_server_as_the_person(
    aiohttp_server: Any, tmp_path: Path, data_dir: Path
) -> None:
    """The same tools through the HTTP API of a running server (signed in with a password)."""
    from tracker.http.app import create_app

    server = await aiohttp_server(create_app(make_settings(data_dir)))
    url = f"http://127.0.0.1:{server.port}"
    async with connect(None, "ann@example.com", url=url, password="x" * 12) as session:
        ok, found = await call(session, "list_projects")
        assert ok and [p["key"] for p in found["projects"]] == ["WEB"], found
        ok, issue = await call(session, "create_issue", project="WEB", title="Over HTTP")
        assert ok and issue["key"] == "WEB-1", issue
        ok, hits = await call(session, "search_issues", q="http")
        assert ok and [hit["key"] for hit in hits["items"]] == ["WEB-1"]
        assert (await call(session, "add_comment", key="WEB-1", body="via the API"))[0]
        ok, moved = await call(session, "move_issue", key="WEB-1", status="In Progress")
        assert ok and moved["status"] == "In Progress"
        ok, updated = await call(session, "update_issue", key="WEB-1", priority="minor")
        assert ok and updated["priority"] == "minor"
        ok, shown = await call(session, "board", project="WEB")
        assert ok and any(c["cards"] and c["stage"] == "In Progress" for c in shown["columns"])
        ok, dossier = await call(session, "get_issue", key="WEB-1")
        assert ok and "via the API" in dossier and dossier.startswith("# WEB-1: Over HTTP")
        ok, problem = await call(session, "get_issue", key="WEB-7")
        assert not ok and problem["status"] == 404
    async with connect(None, "vic@example.com", url=url, password="x" * 12) as session:
        ok, problem = await call(session, "create_issue", project="WEB", title="Nope")
        assert not ok and problem["status"] == 403 and problem["permission"] == "issue.create"
