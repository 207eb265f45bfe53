"""Context dossiers: an issue or a project as Markdown for LLM agents (SPEC §14)."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.context import ContextQuery
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route
from tracker.http.params import ISSUE_PATH, issue_number
from tracker.services import context
from tracker.services.access import ProjectAccess

MARKDOWN = "text/markdown"


def markdown_response(text: str) -> web.Response:
    return web.Response(text=text, content_type=MARKDOWN, charset="utf-8")


async def issue_context(call: Call[ProjectAccess]) -> web.Response:
    number = issue_number(call)
    text = await context.issue_context(call.core, call.access, number, call.query.max_chars)
    return markdown_response(text)


async def project_context(call: Call[ProjectAccess]) -> web.Response:
    text = await context.project_context(call.core, call.access, call.query.max_chars)
    return markdown_response(text)


ROUTES = [
    Route(
        "GET",
        ISSUE_PATH + "/context",
        issue_context,
        Permission.PROJECT_READ,
        "The issue as a Markdown dossier for LLM agents (oldest comments cut to fit)",
        query=ContextQuery,
        tag="context",
        produces=MARKDOWN,
    ),
    Route(
        "GET",
        "/orgs/{org}/projects/{project}/context",
        project_context,
        Permission.PROJECT_READ,
        "The project as a Markdown dossier: stages and counts, active sprint, activity",
        query=ContextQuery,
        tag="context",
        produces=MARKDOWN,
    ),
]
