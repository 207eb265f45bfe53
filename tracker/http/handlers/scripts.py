"""Automation scripts (project admins), their revisions and runs, and previews."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.comments import SubListQuery
from tracker.domain.models.issues import IssuePatch
from tracker.domain.models.scripts import (
    ManualRunAccepted,
    Preview,
    Revision,
    Run,
    RunIn,
    RunQuery,
    Script,
    ScriptDetail,
    ScriptIn,
    ScriptPatch,
)
from tracker.domain.permissions import Permission
from tracker.errors import NotFound
from tracker.http.binding import Call, Route, json_response
from tracker.http.params import ISSUE_PATH, etag, if_match, issue_number
from tracker.services import previews, script_manual, scripts
from tracker.services.access import ProjectAccess


def script_response(script: ScriptDetail, status: int = 200) -> web.Response:
    return json_response(script, status=status, headers=etag(script.version))


async def create_script(call: Call[ProjectAccess]) -> web.Response:
    script = await scripts.create_script(call.core, call.access, call.body, call.actor)
    return script_response(script, status=201)


async def list_scripts(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await scripts.list_scripts(call.core, call.access, call.query))


async def get_script(call: Call[ProjectAccess]) -> web.Response:
    return script_response(await scripts.get_script(call.core, call.access, _id(call)))


async def update_script(call: Call[ProjectAccess]) -> web.Response:
    script = await scripts.update_script(
        call.core, call.access, _id(call), call.body, call.actor, if_match(call)
    )
    return script_response(script)


async def delete_script(call: Call[ProjectAccess]) -> web.Response:
    await scripts.delete_script(call.core, call.access, _id(call), call.actor)
    return web.Response(status=204)


async def list_revisions(call: Call[ProjectAccess]) -> web.Response:
    page = await scripts.list_revisions(call.core, call.access, _id(call), call.query)
    return json_response(page)


async def get_revision(call: Call[ProjectAccess]) -> web.Response:
    text = call.params["rev"]
    if not text.isdigit() or len(text) > 9:
        raise NotFound("revision not found")
    return json_response(await scripts.get_revision(call.core, call.access, _id(call), int(text)))


async def run_script(call: Call[ProjectAccess]) -> web.Response:
    wait = call.query.wait
    outcome = await script_manual.run_manual(
        call.core, call.access, _id(call), call.body or RunIn(), call.actor, wait=wait
    )
    if isinstance(outcome, str):
        return json_response(ManualRunAccepted(id=outcome, status="queued"), status=202)
    return json_response(outcome)


async def dry_run_script(call: Call[ProjectAccess]) -> web.Response:
    preview = await previews.dry_run_script(
        call.core, call.access, _id(call), call.body or RunIn(), call.actor
    )
    return json_response(preview)


async def list_runs(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await scripts.list_runs(call.core, call.access, _id(call), call.query))


async def get_run(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await scripts.get_run(call.core, call.access, call.params["run_id"]))


async def preview_issue(call: Call[ProjectAccess]) -> web.Response:
    preview = await previews.preview_patch(
        call.core, call.access, issue_number(call), call.body, call.actor, if_match(call)
    )
    return json_response(preview)


def _id(call: Call[ProjectAccess]) -> str:
    return call.params["script_id"]


BASE = "/orgs/{org}/projects/{project}/scripts"
ONE = BASE + "/{script_id}"
MANAGE = Permission.SCRIPTS_MANAGE
ROUTES = [
    Route(
        "POST",
        BASE,
        create_script,
        MANAGE,
        "Create a script (compiled; 422 names the line)",
        body=ScriptIn,
        response=ScriptDetail,
        status=201,
        errors=(409,),
        tag="scripts",
    ),
    Route(
        "GET",
        BASE,
        list_scripts,
        MANAGE,
        "A project's scripts",
        query=SubListQuery,
        response=Page[Script],
        tag="scripts",
    ),
    Route(
        "GET",
        BASE + "/runs/{run_id}",
        get_run,
        MANAGE,
        "One run of a script",
        response=Run,
        tag="scripts",
    ),
    Route(
        "GET",
        ONE,
        get_script,
        MANAGE,
        "A script with its source",
        response=ScriptDetail,
        tag="scripts",
    ),
    Route(
        "PATCH",
        ONE,
        update_script,
        MANAGE,
        "Update a script (If-Match honoured; a new source is a new revision)",
        body=ScriptPatch,
        response=ScriptDetail,
        errors=(409, 412),
        tag="scripts",
    ),
    Route("DELETE", ONE, delete_script, MANAGE, "Delete a script", status=204, tag="scripts"),
    Route(
        "GET",
        ONE + "/revisions",
        list_revisions,
        MANAGE,
        "A script's revisions, newest first",
        query=SubListQuery,
        response=Page[Revision],
        tag="scripts",
    ),
    Route(
        "GET",
        ONE + "/revisions/{rev}",
        get_revision,
        MANAGE,
        "One revision of a script",
        response=Revision,
        tag="scripts",
    ),
    Route(
        "POST",
        ONE + "/run",
        run_script,
        MANAGE,
        "Run the script's on_manual function (202; 200 with the finished run when ?wait=true)",
        body=RunIn,
        query=RunQuery,
        response=ManualRunAccepted,
        status=202,
        errors=(409,),
        tag="scripts",
        extra={"other_success": {200: Run}},
    ),
    Route(
        "POST",
        ONE + "/dry-run",
        dry_run_script,
        MANAGE,
        "What a manual run would change, nothing committed",
        body=RunIn,
        response=Preview,
        errors=(409,),
        tag="scripts",
    ),
    Route(
        "GET",
        ONE + "/runs",
        list_runs,
        MANAGE,
        "A script's runs, newest first",
        query=SubListQuery,
        response=Page[Run],
        tag="scripts",
    ),
    Route(
        "POST",
        ISSUE_PATH + "/preview",
        preview_issue,
        Permission.ISSUE_CREATE,
        "What a PATCH and the scripts it sets off would change, nothing committed",
        body=IssuePatch,
        response=Preview,
        tag="scripts",
    ),
]
