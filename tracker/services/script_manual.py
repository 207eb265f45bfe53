"""Manual runs: `POST …/scripts/{id}/run` runs the script's `on_manual` function.

Without `?wait=true` the run starts in the background and the answer is its id
(202); the run-log row with that id appears when it finishes. With it, the
finished run is the answer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tracker.domain.ids import new_id
from tracker.domain.models.issues import parse_issue_ref
from tracker.domain.models.scripts import Run, RunIn
from tracker.errors import Conflict, NotFound
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import Actor
from tracker.services.comments import issue_in
from tracker.services.runtime import Core
from tracker.services.script_runs import Trigger, execute
from tracker.services.scripts import script_row, to_run

#: Background runs still going (a task needs a strong reference until it ends).
_background: set[asyncio.Task[Any]] = set()


async def run_manual(
    core: Core, access: ProjectAccess, script_id: str, body: RunIn, actor: Actor, *, wait: bool
) -> Run | str:
    """The finished Run (wait) or the id the run will have."""
    script = await script_row(core, access, script_id)
    if not any(t["kind"] == "manual" for t in json.loads(script["triggers"])):
        raise Conflict("the script has no on_manual function")
    if body.issue is not None:
        await _issue_exists(core, access, body.issue)
    run_id = new_id()
    work = execute(
        core,
        access.org.id,
        script,
        Trigger("manual", by=actor.user_id),
        issue_key=body.issue,
        run_id=run_id,
    )
    if wait:
        row = await work
        assert row is not None
        return to_run(row)
    task = asyncio.create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return run_id


async def _issue_exists(core: Core, access: ProjectAccess, key: str) -> None:
    project = access.project
    try:
        number = _key_number(project.key, key)
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    await read(core, access, lambda conn: issue_in(conn, project.id, number))


def _key_number(project_key: str, key: str) -> int:
    found, number = parse_issue_ref(key)
    if found is not None and found != project_key.upper():
        raise ValueError("issue not found in this project")
    return number
