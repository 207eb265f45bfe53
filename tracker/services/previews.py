"""Preview: what a PATCH and every script it sets off would change, with nothing committed.

    preview = await preview_patch(core, access, number, patch, actor, if_match)

Everything happens in ONE transaction that is rolled back (`mutate(..., dry_run=True)`
on the tenant's writer thread): the patch goes through `issues.update_in` exactly
as a PATCH would; its changes become events (`render_in`); each enabled event
script of the project that listens runs in a worker process (driven from this
thread, its reads answered from this same transaction, so it sees the patch),
and its effects are applied with the same functions real runs use, then
cascade up to MAX_DEPTH. Then ROLLBACK: no rows, no seq, no issue numbers, no
events, no run-log rows. The writer of this tenant waits meanwhile (at most the
scripts' wall-clock budgets), never the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from tracker.domain.changes import Actor, Change, ChangeBatch
from tracker.domain.ids import new_id
from tracker.domain.models.issues import IssuePatch
from tracker.domain.models.scripts import (
    Preview,
    PreviewChange,
    PreviewComment,
    PreviewEmail,
    PreviewRun,
    RunIn,
)
from tracker.errors import Conflict, RhythmError
from tracker.services.access import ProjectAccess
from tracker.services.assignees import users_must_see_project_in
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.event_objects import Event, render_in
from tracker.services.issues import update_in
from tracker.services.runtime import Core
from tracker.services.script_effects import ScriptScope, answer_read, issue_by_id, issue_by_key
from tracker.services.script_runs import (
    MAX_DEPTH,
    Trigger,
    apply_in_savepoint,
    build_job,
    script_scope,
    system_bridge,
    wall_deadline,
)
from tracker.services.script_triggers import scripts_with
from tracker.services.scripts import script_row
from tracker.services.tags import may_create_tags
from tracker.storage import assignees as assignee_sql


class _Engine:
    """Runs scripts and their cascade inside one rolled-back unit, collecting the answer."""

    def __init__(
        self,
        core: Core,
        uow: UnitOfWork,
        scripts: list[dict[str, Any]],
        scopes: dict[str, ScriptScope | str],
    ) -> None:
        self.core, self.uow, self.scripts, self.scopes = core, uow, scripts, scopes
        self.changes: list[PreviewChange] = []
        self.comments: list[PreviewComment] = []
        self.runs: list[PreviewRun] = []
        self.emails: list[PreviewEmail] = []

    def answer(self, would_fail: dict[str, Any] | None = None) -> Preview:
        return Preview(
            changes=self.changes,
            comments=self.comments,
            runs=self.runs,
            would_fail=would_fail,
            emails=self.emails,
        )

    def cascade(self, changes: list[Change], by: str, depth: int, source: str | None) -> None:
        """Report `changes`, then run the event scripts they set off (one level deeper)."""
        events = render_in(self.uow.conn, ChangeBatch("", new_id(), tuple(changes)))
        for event in events:
            self._report(event, by)
        if depth > MAX_DEPTH:
            return
        for event in events:
            for script in self.scripts:
                if script["project_id"] != event.project_id or script["id"] == source:
                    continue
                if any(t.get("event") == event.name for t in script["parsed"]):
                    trigger = Trigger("event", event=event.name, seq=event.seq)
                    self.run(script, trigger, event.data, event.issue_id, None, depth)

    def run(
        self,
        script: dict[str, Any],
        trigger: Trigger,
        event: dict[str, Any] | None,
        issue_id: str | None,
        issue: dict[str, Any] | None,
        depth: int,
    ) -> None:
        scope = self.scopes.get(script["id"])
        if not isinstance(scope, ScriptScope):
            self.runs.append(
                PreviewRun(script=script["name"], status="error", logs=[], error=str(scope))
            )
            return
        scope = _at_depth(scope, depth, trigger.seq)
        conn = self.uow.conn
        if issue_id is not None:
            issue = issue_by_id(conn, scope, issue_id)
        job = build_job(self.core, script, scope, trigger, event, issue)
        result = self.core.scripts.run(
            job, lambda message: answer_read(conn, scope, message), wall_deadline(self.core)
        )
        status, error = result["status"], result.get("error")
        if result.get("line") and error:
            error = f"line {result['line']}: {error}"
        made: list[Change] = []
        if status == "ok" and result.get("effects"):
            sub = UnitOfWork(conn, scope.actor, at=self.uow.at)
            status, error = apply_in_savepoint(sub, scope, result["effects"])
            made = sub.recorded
            if status == "ok":  # queued inside the rolled-back transaction: never sent
                self.emails += [
                    PreviewEmail(to=e["to"], subject=e["subject"], body=e["body"],
                                 by=f"script:{script['name']}")
                    for e in result["effects"] if e.get("kind") == "email"
                ]  # fmt: skip
        self.runs.append(
            PreviewRun(
                script=script["name"], status=status, logs=result.get("logs") or [], error=error
            )
        )
        if made:
            self.cascade(made, f"script:{script['name']}", depth + 1, script["id"])

    def _report(self, event: Event, by: str) -> None:
        data = event.data
        key = (data.get("issue") or {}).get("key")
        if event.name == "issue.created":
            self.changes.append(PreviewChange(issue=key, field=None, new=data.get("issue"), by=by))
        for change in data.get("changes") or []:
            new = change.get("new")
            if change.get("field") == "comment" and change.get("old") is None and new:
                self.comments.append(PreviewComment(issue=key, body=new.get("body", ""), by=by))
            else:
                self.changes.append(PreviewChange(issue=key, **change, by=by))


def _at_depth(scope: ScriptScope, depth: int, caused_by: int | None) -> ScriptScope:
    meta = {**(scope.actor.meta or {}), "depth": depth}
    if caused_by is not None:
        meta["caused_by"] = caused_by
    return dataclasses.replace(scope, actor=dataclasses.replace(scope.actor, meta=meta))


async def _scopes(
    core: Core, org_id: str, scripts: list[dict[str, Any]]
) -> dict[str, ScriptScope | str]:
    """Each script's identity now; a script whose owner lost the rights gets the reason."""
    scopes: dict[str, ScriptScope | str] = {}
    for script in scripts:
        try:
            scopes[script["id"]] = await script_scope(core, org_id, script)
        except RhythmError as exc:
            scopes[script["id"]] = (
                f"the script's owner may no longer change issues here: {exc.detail}"
            )
    return scopes


async def preview_patch(
    core: Core,
    access: ProjectAccess,
    number: int,
    patch: IssuePatch,
    actor: Actor,
    if_match: str | None = None,
) -> Preview:
    """POST …/issues/{n}/preview: 200 with `would_fail` when the patch itself is refused."""
    project = access.project
    org_id = access.org.id
    scripts = [
        s for s in await scripts_with(core, org_id, "event") if s["project_id"] == project.id
    ]
    scopes = await _scopes(core, org_id, scripts)
    bridge = system_bridge(core, asyncio.get_running_loop())
    may_tag = may_create_tags(access)

    def org_roles_of(ids: list[str]) -> dict[str, str]:
        return bridge(lambda c: assignee_sql.org_member_roles(c, org_id, ids))

    def work(uow: UnitOfWork) -> Preview:
        engine = _Engine(core, uow, scripts, scopes)
        try:
            assignees = patch.assignees if "assignees" in patch.model_fields_set else None
            users_must_see_project_in(
                uow.conn, access, assignees, patch.custom_fields, org_roles_of
            )
            update_in(uow, access, number, patch, actor, if_match, may_tag)
        except RhythmError as exc:
            return engine.answer(would_fail=exc.to_problem())
        engine.cascade(list(uow.recorded), "request", 1, None)
        return engine.answer()

    return await mutate(core, access, actor, work, dry_run=True)


async def dry_run_script(
    core: Core, access: ProjectAccess, script_id: str, body: RunIn, actor: Actor
) -> Preview:
    """POST …/scripts/{id}/dry-run: the manual run and its cascade, nothing committed."""
    project = access.project
    org_id = access.org.id
    script = await script_row(core, access, script_id)
    manual = {**script, "parsed": json.loads(script["triggers"])}
    if not any(t["kind"] == "manual" for t in manual["parsed"]):
        raise Conflict("the script has no on_manual function")
    scripts = [
        s for s in await scripts_with(core, org_id, "event") if s["project_id"] == project.id
    ]
    scopes = await _scopes(core, org_id, [manual, *scripts])

    def work(uow: UnitOfWork) -> Preview:
        engine = _Engine(core, uow, scripts, scopes)
        scope = scopes[manual["id"]]
        issue = (
            issue_by_key(uow.conn, scope, body.issue)
            if body.issue and isinstance(scope, ScriptScope)
            else None
        )
        engine.run(manual, Trigger("manual", by=actor.user_id), None, None, issue, 1)
        return engine.answer()

    return await mutate(core, access, actor, work, dry_run=True)
