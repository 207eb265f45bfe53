"""Issues: create, list, read (also by key across the org), update, delete, restore,
history and assignees. Responses with one issue carry its version as the ETag."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.issues import (
    Assignee,
    AssigneesIn,
    HistoryItem,
    Issue,
    IssueCreate,
    IssueListQuery,
    IssuePatch,
    PageQuery,
)
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.http.params import ISSUE_PATH, etag, if_match, issue_number
from tracker.services import assignees, history, issue_lists, issues
from tracker.services.access import OrgAccess, ProjectAccess


def issue_response(issue: Issue, status: int = 200) -> web.Response:
    return json_response(issue, status=status, headers=etag(issue.version))


async def create_issue(call: Call[ProjectAccess]) -> web.Response:
    issue = await issues.create_issue(call.core, call.access, call.body, call.actor)
    return issue_response(issue, status=201)


async def list_issues(call: Call[ProjectAccess]) -> web.Response:
    body = await issue_lists.list_issues_json(call.core, call.access, call.query)
    return web.Response(body=body, content_type="application/json")


async def get_issue(call: Call[ProjectAccess]) -> web.Response:
    body, version = await issues.get_issue_json(call.core, call.access, issue_number(call))
    return web.Response(body=body, content_type="application/json", headers=etag(version))


async def get_issue_by_key(call: Call[OrgAccess]) -> web.Response:
    key = call.params["key"]
    return issue_response(await issues.get_issue_by_key(call.core, call.access, key))


async def update_issue(call: Call[ProjectAccess]) -> web.Response:
    issue = await issues.update_issue(
        call.core, call.access, issue_number(call), call.body, call.actor, if_match(call)
    )
    return issue_response(issue)


async def delete_issue(call: Call[ProjectAccess]) -> web.Response:
    await issues.delete_issue(
        call.core, call.access, issue_number(call), call.actor, if_match(call)
    )
    return web.Response(status=204)


async def restore_issue(call: Call[ProjectAccess]) -> web.Response:
    issue = await issues.restore_issue(call.core, call.access, issue_number(call), call.actor)
    return issue_response(issue)


async def issue_history(call: Call[ProjectAccess]) -> web.Response:
    page = await history.issue_history(call.core, call.access, issue_number(call), call.query)
    return json_response(page)


async def list_assignees(call: Call[ProjectAccess]) -> web.Response:
    items = await assignees.list_assignees(call.core, call.access, issue_number(call))
    return json_response(Page[Assignee](items=items))


async def set_assignees(call: Call[ProjectAccess]) -> web.Response:
    issue = await issues.set_assignees(
        call.core, call.access, issue_number(call), call.body.user_ids, call.actor, if_match(call)
    )
    return issue_response(issue)


ROUTES = [
    Route(
        "POST",
        "/orgs/{org}/projects/{project}/issues",
        create_issue,
        Permission.ISSUE_CREATE,
        "Create an issue",
        body=IssueCreate,
        response=Issue,
        status=201,
        tag="issues",
    ),
    Route(
        "GET",
        "/orgs/{org}/projects/{project}/issues",
        list_issues,
        Permission.PROJECT_READ,
        "List a project's issues (filters, sort, cursor)",
        query=IssueListQuery,
        response=Page[Issue],
        tag="issues",
    ),
    Route(
        "GET",
        "/orgs/{org}/issues/{key}",
        get_issue_by_key,
        Permission.ORG_READ,
        "An issue by key (e.g. WEB-42) in any project the caller can see",
        response=Issue,
        tag="issues",
    ),
    Route(
        "GET",
        ISSUE_PATH,
        get_issue,
        Permission.PROJECT_READ,
        "An issue",
        response=Issue,
        tag="issues",
    ),
    Route(
        "PATCH",
        ISSUE_PATH,
        update_issue,
        Permission.ISSUE_CREATE,
        "Update the named fields (If-Match honoured; reporters: title/description of their own)",
        body=IssuePatch,
        response=Issue,
        errors=(409, 412),
        tag="issues",
    ),
    Route(
        "DELETE",
        ISSUE_PATH,
        delete_issue,
        Permission.ISSUE_DELETE,
        "Soft-delete an issue",
        status=204,
        errors=(412,),
        tag="issues",
    ),
    Route(
        "POST",
        ISSUE_PATH + "/restore",
        restore_issue,
        Permission.ISSUE_DELETE,
        "Restore a soft-deleted issue",
        response=Issue,
        errors=(409,),
        tag="issues",
    ),
    Route(
        "GET",
        ISSUE_PATH + "/history",
        issue_history,
        Permission.PROJECT_READ,
        "The issue's changes, newest first",
        query=PageQuery,
        response=Page[HistoryItem],
        tag="issues",
    ),
    Route(
        "GET",
        ISSUE_PATH + "/assignees",
        list_assignees,
        Permission.PROJECT_READ,
        "The issue's assignees",
        response=Page[Assignee],
        tag="issues",
    ),
    Route(
        "PUT",
        ISSUE_PATH + "/assignees",
        set_assignees,
        Permission.ISSUE_UPDATE,
        "Replace the issue's assignees",
        body=AssigneesIn,
        response=Issue,
        errors=(412,),
        tag="issues",
    ),
]
