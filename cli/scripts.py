"""`rhythm script ...`: automation scripts on a data directory, no server needed.

Operator rights, like the other groups; `--as EMAIL` names the person recorded
as the author, who becomes the script's owner (the rights its runs act with)
and is required to push, run, enable or disable. Scripts are named by name or
id. Event and schedule triggers run in the server (`rhythm serve`); changes
made here reach them when it next starts (the feed consumer resumes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.context import DataDirOption, JsonOption, fail, print_json, print_table, run_with_core
from cli.orgs import AsOption
from tracker.core import Core
from tracker.domain.changes import Origin
from tracker.domain.models.comments import SubListQuery
from tracker.domain.models.scripts import RunIn, ScriptIn, ScriptPatch
from tracker.errors import NotFound
from tracker.services import script_manual, scripts
from tracker.services.acting import act_as

app = typer.Typer(help="Automation scripts: list, push, show, log, run.", no_args_is_help=True)

OrgOption = typer.Option(..., "--org", "-o", help="Organization slug.")
ProjectOption = typer.Option(..., "--project", "-p", help="Project key, e.g. WEB.")


def _source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")


async def _found(core: Core, org: str, project: str, ref: str, user: str | None) -> Any:
    access, actor = await act_as(core, org, project, user, Origin.CLI)
    script_id = await scripts.script_id_of(core, access, ref)
    if script_id is None:
        raise NotFound(f"no script named {ref} in {project}")
    return access, actor, script_id


def _need_person(user: str | None) -> None:
    if user is None:
        fail("name the person acting (--as EMAIL): they become the script's owner")


@app.command("list")
def list_(
    org: str = OrgOption,
    project: str = ProjectOption,
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A project's scripts."""

    async def work(core: Core) -> Any:
        access, _ = await act_as(core, org, project, None, Origin.CLI)
        return await scripts.list_scripts(core, access, SubListQuery(limit=200))

    page = run_with_core(data_dir, work)
    if as_json:
        print_json(page)
        return
    rows = [
        {**s.model_dump(), "triggers": ", ".join(t.event or t.cron or t.kind for t in s.triggers)}
        for s in page.items
    ]
    print_table(rows, ["name", "enabled", "revision", "triggers", "updated_at", "id"])


@app.command("push")
def push(
    file: Path = typer.Argument(..., help="Lua source file."),
    org: str = OrgOption,
    project: str = ProjectOption,
    name: str | None = typer.Option(None, help="Script name (default: the file's stem)."),
    description: str | None = typer.Option(None, help="What the script is for."),
    user: str | None = AsOption,
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Create the script, or save the file as its new revision (compiled first)."""
    _need_person(user)
    source, script_name = _source(file), name or file.stem

    async def work(core: Core) -> Any:
        access, actor = await act_as(core, org, project, user, Origin.CLI)
        script_id = await scripts.script_id_of(core, access, script_name)
        if script_id is None:
            data = ScriptIn(name=script_name, source=source, description=description or "")
            return await scripts.create_script(core, access, data, actor)
        fields: dict[str, Any] = {"source": source}
        if description is not None:
            fields["description"] = description
        patch = ScriptPatch.model_validate(fields)
        return await scripts.update_script(core, access, script_id, patch, actor, None)

    script = run_with_core(data_dir, work)
    if as_json:
        print_json(script)
    else:
        typer.echo(f"{script.name}: revision {script.revision} ({script.id})")


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="Script name or id."),
    org: str = OrgOption,
    project: str = ProjectOption,
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A script, its triggers and its source."""

    async def work(core: Core) -> Any:
        access, _, script_id = await _found(core, org, project, ref, None)
        return await scripts.get_script(core, access, script_id)

    script = run_with_core(data_dir, work)
    if as_json:
        print_json(script)
        return
    state = "enabled" if script.enabled else "disabled"
    typer.echo(f"{script.name} · revision {script.revision} · {state} · {script.id}")
    for trigger in script.triggers:
        typer.echo(
            f"  on {trigger.kind}: {trigger.event or trigger.cron or ''}"
            + (f" (next {trigger.next_run_at})" if trigger.next_run_at else "")
        )
    typer.echo("\n" + script.source)


@app.command("log")
def log(
    ref: str = typer.Argument(..., help="Script name or id."),
    org: str = OrgOption,
    project: str = ProjectOption,
    limit: int = typer.Option(20, min=1, max=200, help="Runs to show, newest first."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """A script's runs, newest first."""

    async def work(core: Core) -> Any:
        access, _, script_id = await _found(core, org, project, ref, None)
        return await scripts.list_runs(core, access, script_id, SubListQuery(limit=limit))

    page = run_with_core(data_dir, work)
    if as_json:
        print_json(page)
        return
    rows = [
        {**r.model_dump(), "trigger": r.trigger.event or r.trigger.kind, "changes": len(r.changes)}
        for r in page.items
    ]
    print_table(rows, ["started_at", "trigger", "status", "duration_ms", "changes", "error"])


@app.command("run")
def run(
    ref: str = typer.Argument(..., help="Script name or id."),
    org: str = OrgOption,
    project: str = ProjectOption,
    issue: str | None = typer.Option(None, help="Issue key ctx.issue is set to, e.g. WEB-3."),
    user: str | None = AsOption,
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run the script's on_manual function now and show the finished run."""
    _need_person(user)

    async def work(core: Core) -> Any:
        access, actor, script_id = await _found(core, org, project, ref, user)
        body = RunIn.model_validate({"issue": issue})
        return await script_manual.run_manual(core, access, script_id, body, actor, wait=True)

    result = run_with_core(data_dir, work)
    if as_json:
        print_json(result)
        return
    typer.echo(f"{result.status} in {result.duration_ms} ms, {len(result.changes)} change(s)")
    for line in result.logs:
        typer.echo(f"  log: {line}")
    if result.error:
        typer.echo(f"  error: {result.error}")
    if result.status != "ok":
        raise typer.Exit(1)


def _set_enabled(
    ref: str, org: str, project: str, user: str | None, data_dir: Path | None, enabled: bool
) -> None:
    _need_person(user)

    async def work(core: Core) -> Any:
        access, actor, script_id = await _found(core, org, project, ref, user)
        patch = ScriptPatch(enabled=enabled)
        return await scripts.update_script(core, access, script_id, patch, actor, None)

    script = run_with_core(data_dir, work)
    typer.echo(f"{script.name}: {'enabled' if script.enabled else 'disabled'}")


@app.command("disable")
def disable(
    ref: str = typer.Argument(..., help="Script name or id."),
    org: str = OrgOption,
    project: str = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Stop the script at once (no further runs)."""
    _set_enabled(ref, org, project, user, data_dir, False)


@app.command("enable")
def enable(
    ref: str = typer.Argument(..., help="Script name or id."),
    org: str = OrgOption,
    project: str = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Let the script run again (it reacts to changes from now on)."""
    _set_enabled(ref, org, project, user, data_dir, True)
