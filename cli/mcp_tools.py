"""The MCP server's tools: each one an API route's door, as one person on a data directory.

Every tool names the permission of the route it stands for, acts through
`act_as(..., permission=...)` (so a person gets exactly the HTTP door's
access: 404 hides, 403 refuses), validates its arguments with a model built
from the API's own pydantic model (its JSON schema is what `tools/list` shows),
and calls the same service function as the route. Errors come back as problem
details; the server turns them into MCP tool errors.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracker.core import Core
from tracker.domain.changes import Actor, Origin
from tracker.domain.models.comments import CommentIn
from tracker.domain.models.context import ContextQuery
from tracker.domain.models.issues import Issue, IssueCreate, IssuePatch, parse_issue_ref
from tracker.domain.models.orgs import ProjectListQuery
from tracker.domain.models.search import SearchQuery
from tracker.domain.models.workflow import Board, BoardQuery
from tracker.domain.permissions import Permission
from tracker.errors import Forbidden, NotFound, RhythmError, ValidationFailed
from tracker.services import boards, comments, context, issues, orgs, projects, search
from tracker.services.access import OrgAccess, ProjectAccess
from tracker.services.acting import act_as, person

#: Stored on every change row an MCP tool writes (the change-log origin is `cli`).
MCP_META = {"via": "mcp"}


def org_of(args: BaseModel, default: str | None) -> str:
    """The org a tool acts in: its `org` argument, else the server's --org."""
    org = getattr(args, "org", None) or default
    if not org:
        raise ValidationFailed([("org", "name the org (or start the server with --org)")])
    return str(org)


@dataclass
class Session:
    """Who the server acts as, on which core; `org` is the default org slug."""

    core: Core
    who: str
    org: str | None = None

    def org_of(self, args: BaseModel) -> str:
        return org_of(args, self.org)

    async def project(self, args: BaseModel, key: str, permission: Permission) -> ProjectAccess:
        access, _ = await act_as(
            self.core, self.org_of(args), key, self.who, Origin.CLI, permission=permission
        )
        return access

    async def org_access(self, args: BaseModel, permission: Permission) -> OrgAccess:
        access, _ = await act_as(
            self.core, self.org_of(args), None, self.who, Origin.CLI, permission=permission
        )
        return access

    async def actor(self) -> Actor:
        return Actor(await person(self.core, self.who), Origin.CLI, meta=MCP_META)

    async def execute(self, tool: Tool, args: Any, raw: dict[str, Any]) -> Any:
        return await tool.run(self, args, raw)


Run = Callable[[Session, Any, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    permission: Permission
    run: Run

    def schema(self) -> dict[str, Any]:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return schema


# --- argument models: the API's models plus where to act ---------------------------------------


def _org() -> Any:
    return Field(None, min_length=1, max_length=40, description="org slug (default: --org)")


def _project() -> Any:
    return Field(min_length=2, max_length=10, description="project key, e.g. WEB")


def _key() -> Any:
    return Field(min_length=3, max_length=24, description="issue key, e.g. WEB-42")


_FORBID = ConfigDict(extra="forbid")


class SearchArgs(SearchQuery):
    model_config = SearchQuery.model_config | {"extra": "forbid"}

    org: str | None = _org()
    project: str | None = Field(
        None,
        min_length=2,
        max_length=10,
        description="only this project (default: every visible one)",
    )
    limit: int = Field(20, ge=1, le=200)


class ListProjectsArgs(BaseModel):
    model_config = _FORBID

    org: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        description="org slug (default: --org; none: every org of yours)",
    )


class MoveArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    org: str | None = _org()
    key: str = _key()
    status: str = Field(min_length=1, max_length=100, description="the stage (board column)")
    # the PATCH body's board fields, as IssuePatch declares them
    before: int | None = Field(None, ge=1, description="put the card above this issue number")
    after: int | None = Field(None, ge=1, description="put the card below this issue number")


class GetIssueArgs(ContextQuery):
    org: str | None = _org()
    key: str = _key()


class CreateIssueArgs(IssueCreate):
    org: str | None = _org()
    project: str = _project()


class UpdateIssueArgs(IssuePatch):
    org: str | None = _org()
    key: str = _key()


class CommentArgs(CommentIn):
    org: str | None = _org()
    key: str = _key()


class BoardArgs(BoardQuery):
    model_config = BoardQuery.model_config | {"extra": "forbid"}

    org: str | None = _org()
    project: str = _project()


#: routing fields, removed before the API model sees the rest
_WHERE = ("org", "project", "key")


def api_body(model: type[BaseModel], raw: dict[str, Any]) -> Any:
    """The API model from the tool's raw arguments (fields not given stay unset)."""
    return model.model_validate({k: v for k, v in raw.items() if k not in _WHERE})


def issue_ref(key: str) -> tuple[str, int]:
    try:
        project, number = parse_issue_ref(key)
    except ValueError:
        project = None
    if project is None:
        raise ValidationFailed([("key", "give an issue key such as WEB-42")])
    return project, number


def _issue_json(issue: Issue) -> dict[str, Any]:
    return issue.model_dump(mode="json")


# --- result shapes, shared with the --url door (cli/mcp_remote.py) ------------------------------

HIT_FIELDS = ("key", "title", "status", "priority", "type", "assignees", "updated_at")


def hits_json(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """Search results, compact: get_issue has the rest."""
    shown = [{name: item[name] for name in HIT_FIELDS} for item in items]
    return {"items": shown, "next_cursor": next_cursor}


def project_json(org: str, project: dict[str, Any]) -> dict[str, Any]:
    keep = ("key", "name", "visibility", "role")
    return {"org": org, **{name: project.get(name) for name in keep}}


def board_json(key: str, board: dict[str, Any]) -> dict[str, Any]:
    """The board, compact: columns in order with counts and their cards."""
    columns = [
        {
            "stage": column["stage"]["name"],
            "category": column["stage"]["category"],
            "count": column["count"],
            "cards": [
                {name: card[name] for name in ("key", "title", "priority", "assignees")}
                for card in column["items"]
            ],
        }
        for column in board["columns"]
    ]
    return {"project": key, "columns": columns}


# --- the tools ------------------------------------------------------------------------------


async def search_issues(session: Session, args: SearchArgs, raw: dict[str, Any]) -> Any:
    core, q = session.core, args.q
    if args.project:
        access = await session.project(args, args.project, Permission.PROJECT_READ)
        page = await search.search_project_issues(
            core, access, q, limit=args.limit, cursor=args.cursor, highlight=False
        )
    else:
        org_access = await session.org_access(args, Permission.ORG_READ)
        page = await search.search_org_issues(
            core, org_access, q, limit=args.limit, cursor=args.cursor, highlight=False
        )
    return hits_json([hit.model_dump(mode="json") for hit in page.items], page.next_cursor)


async def get_issue(session: Session, args: Any, raw: dict[str, Any]) -> Any:
    project, number = issue_ref(args.key)
    access = await session.project(args, project, Permission.PROJECT_READ)
    return await context.issue_context(session.core, access, number, args.max_chars)


async def create_issue(session: Session, args: Any, raw: dict[str, Any]) -> Any:
    access = await session.project(args, args.project, Permission.ISSUE_CREATE)
    body = api_body(IssueCreate, raw)
    return _issue_json(await issues.create_issue(session.core, access, body, await session.actor()))


async def update_issue(session: Session, args: Any, raw: dict[str, Any]) -> Any:
    project, number = issue_ref(args.key)
    access = await session.project(args, project, Permission.ISSUE_CREATE)
    patch = api_body(IssuePatch, raw)
    actor = await session.actor()
    return _issue_json(await issues.update_issue(session.core, access, number, patch, actor))


async def move_issue(session: Session, args: MoveArgs, raw: dict[str, Any]) -> Any:
    project, number = issue_ref(args.key)
    access = await session.project(args, project, Permission.ISSUE_CREATE)
    patch = IssuePatch(status=args.status, before=args.before, after=args.after)
    actor = await session.actor()
    return _issue_json(await issues.update_issue(session.core, access, number, patch, actor))


async def add_comment(session: Session, args: Any, raw: dict[str, Any]) -> Any:
    project, number = issue_ref(args.key)
    access = await session.project(args, project, Permission.COMMENT_CREATE)
    body = api_body(CommentIn, raw)
    actor = await session.actor()
    made = await comments.create_comment(session.core, access, number, body, actor)
    return made.model_dump(mode="json")


async def list_projects(session: Session, args: ListProjectsArgs, raw: dict[str, Any]) -> Any:
    slugs = [args.org or session.org] if (args.org or session.org) else None
    if slugs is None:
        user_id = await person(session.core, session.who)
        slugs = [org.slug for org in await orgs.orgs_of_user(session.core, user_id)]
    found = []
    for slug in slugs:
        access, _ = await act_as(
            session.core, str(slug), None, session.who, Origin.CLI, permission=Permission.ORG_READ
        )
        page = await projects.list_projects(session.core, access, ProjectListQuery(limit=200))
        found += [project_json(str(slug), p.model_dump(mode="json")) for p in page.items]
    return {"projects": found}


async def board(session: Session, args: Any, raw: dict[str, Any]) -> Any:
    access = await session.project(args, args.project, Permission.PROJECT_READ)
    query = BoardQuery(limit=args.limit, q=args.q)
    shown: Board = await boards.project_board(session.core, access, query)
    return board_json(access.project.key, shown.model_dump(mode="json"))


TOOLS: tuple[Tool, ...] = (
    Tool(
        "search_issues",
        "Search issues with Rhythm's query language (e.g. `status:open "
        "assignee:me login bug`); one project or every project you can see.",
        SearchArgs,
        Permission.PROJECT_READ,
        search_issues,
    ),
    Tool(
        "get_issue",
        "An issue as a Markdown dossier: fields, description, parent and "
        "sub-issues, relations, history summary and the latest comments, within max_chars.",
        GetIssueArgs,
        Permission.PROJECT_READ,
        get_issue,
    ),
    Tool(
        "create_issue",
        "Create an issue in a project (the API's issue create body).",
        CreateIssueArgs,
        Permission.ISSUE_CREATE,
        create_issue,
    ),
    Tool(
        "update_issue",
        "Change the named fields of an issue (the API's PATCH body).",
        UpdateIssueArgs,
        Permission.ISSUE_CREATE,
        update_issue,
    ),
    Tool(
        "add_comment",
        "Add a comment to an issue.",
        CommentArgs,
        Permission.COMMENT_CREATE,
        add_comment,
    ),
    Tool(
        "move_issue",
        "Move an issue to a board stage (column), optionally above/below "
        "another card; workflow transition rules apply.",
        MoveArgs,
        Permission.ISSUE_CREATE,
        move_issue,
    ),
    Tool(
        "list_projects",
        "The projects you can see, with your role in each.",
        ListProjectsArgs,
        Permission.ORG_READ,
        list_projects,
    ),
    Tool(
        "board",
        "A project's Kanban board: columns in order with counts and ranked cards.",
        BoardArgs,
        Permission.PROJECT_READ,
        board,
    ),
)
BY_NAME = {tool.name: tool for tool in TOOLS}


class Door(Protocol):
    """Where tools run: `Session` (a data directory) or `RemoteSession` (a server)."""

    async def execute(self, tool: Tool, args: Any, raw: dict[str, Any]) -> Any: ...


async def call(session: Door, name: str, raw: dict[str, Any] | None) -> tuple[bool, Any]:
    """(ok, result): the tool's result, or the problem details of what went wrong."""
    tool = BY_NAME.get(name)
    if tool is None:
        return False, NotFound(f"no tool named {name!r}").to_problem()
    raw = raw or {}
    try:
        args = tool.args.model_validate(raw)
        return True, await session.execute(tool, args, raw)
    except ValidationError as exc:
        return False, ValidationFailed.from_pydantic(exc, whole="arguments").to_problem()
    except RhythmError as error:
        problem = error.to_problem()
        if problem.get("status") == Forbidden.status:  # name what was missing
            problem["detail"] = f"{tool.permission}: {problem.get('detail')}"
            problem["permission"] = str(tool.permission)
        return False, problem


def as_text(value: Any) -> str:
    """A tool result as the text an agent reads: Markdown as is, data as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
