"""`rhythm mcp`: a Model Context Protocol server over stdio (the official `mcp` SDK).

An AI assistant starts it as a subprocess and talks JSON-RPC on its stdin and
stdout; it acts as one person (`--as EMAIL`) on a data directory, through the
tools in `cli.mcp_tools`, or (`--url`) on a running server through its HTTP API
(`cli.mcp_remote`; signed in with RHYTHM_PASSWORD, or RHYTHM_TOKEN). stdout
belongs to the protocol: logs go to stderr.
A tool that fails (bad arguments, a permission, a rule) answers with an MCP
tool error carrying the problem details; it never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

import typer

from cli.context import DataDirOption, fail, load_settings
from tracker import __version__
from tracker.errors import RhythmError

log = logging.getLogger("rhythm.mcp")


def mcp(
    data_dir: Path | None = DataDirOption,
    who: str | None = typer.Option(None, "--as", help="Act as this person (email)."),
    org: str | None = typer.Option(None, "--org", help="Default org slug for the tools."),
    url: str | None = typer.Option(
        None, "--url", help="A running server, e.g. http://127.0.0.1:8080 (instead of a data dir)."
    ),
) -> None:
    """Serve the Model Context Protocol on stdio, as one person on a data directory
    (or on a running server with --url; password in RHYTHM_PASSWORD or a RHYTHM_TOKEN)."""
    settings = load_settings(data_dir)
    logging.basicConfig(stream=sys.stderr, level=settings.log_level.upper())
    try:
        if url is not None:
            password, token = os.environ.get("RHYTHM_PASSWORD"), os.environ.get("RHYTHM_TOKEN")
            if password and not who:
                fail("RHYTHM_PASSWORD signs in --as EMAIL: name the person")
            asyncio.run(serve_remote(url.rstrip("/"), who, org, password, token))
            return
        if not who:
            fail("name the person the tools act as: --as EMAIL")
        asyncio.run(serve(settings, who, org))
    except RhythmError as error:
        fail(error.detail)
    except OSError as exc:  # the server cannot be reached
        fail(f"cannot reach {url}: {exc}")


async def serve(settings: Any, who: str, org: str | None) -> None:
    """Open the core, check the person exists, then serve until the client hangs up."""
    from cli.mcp_tools import Session
    from tracker.core import open_core
    from tracker.services.acting import person

    async with open_core(settings, background=False) as core:
        await person(core, who)  # fail at start, not at the first tool call
        await _run(build_server(Session(core, who, org)))


async def serve_remote(
    url: str, who: str | None, org: str | None, password: str | None, token: str | None
) -> None:
    """Sign in to the server, then serve until the client hangs up."""
    import aiohttp

    from cli.mcp_remote import RemoteSession

    async with aiohttp.ClientSession() as http:
        session = RemoteSession(url, http, org, who, password, access=token)
        await session.sign_in()  # fail at start, not at the first tool call
        await _run(build_server(session))


async def _run(server: Any) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def build_server(session: Any) -> Any:
    """The low-level SDK server with the tool table (schemas from the API's models)."""
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from cli.mcp_tools import TOOLS, as_text, call

    listed = [
        types.Tool(name=t.name, description=t.description, input_schema=t.schema()) for t in TOOLS
    ]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            ok, value = await call(session, params.name, params.arguments)
        except Exception:  # a bug must not take the server down: report it, keep serving
            log.exception("tool %s failed", params.name)
            ok, value = False, {"status": 500, "title": "Internal error", "detail": "see the log"}
        structured = value if isinstance(value, dict) else None
        return types.CallToolResult(
            content=[types.TextContent(text=as_text(value))],
            structured_content=structured,
            is_error=not ok,
        )

    return Server(
        "rhythm",
        version=__version__,
        instructions="Rhythm issue tracker: search, read (get_issue), create and move issues.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
