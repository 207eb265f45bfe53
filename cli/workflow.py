"""`rhythm tag|stage|field ...`: a project's tags, workflow stages (with transition rules)
and custom field definitions, named by name on the command line.

Operator rights, or `--as` a person's own roles (see cli/issue_args.py); each command resolves
names to ids with a list call and then calls one service function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from cli.context import DataDirOption, JsonOption, print_json, print_table, run_with_core
from cli.issue_args import validated
from cli.target import AsOption, OrgOption, ProjectOption, Target
from tracker.domain.permissions import Permission

if TYPE_CHECKING:
    from tracker.core import Core
    from tracker.domain.changes import Actor
    from tracker.services.access import ProjectAccess

T = TypeVar("T")

tag_app = typer.Typer(help="A project's tags.", no_args_is_help=True)
stage_app = typer.Typer(help="Workflow stages (board columns) and transition rules.",
                        no_args_is_help=True)  # fmt: skip
field_app = typer.Typer(help="Custom field definitions.", no_args_is_help=True)

Work = Callable[["Core", "ProjectAccess", "Actor"], Awaitable[T]]


def _run(
    data_dir: Path | None, org: str | None, project: str | None, user: str | None, work: Work[T],
    permission: Permission = Permission.PROJECT_READ,
) -> T:  # fmt: skip
    """Resolve the target, act as the operator (or as `--as` with that person's roles,
    decided by `permission`, the matching route's) in the project, run `work`."""
    target = Target(data_dir, org, project, user)
    org_slug, key, who = target.org, target.project, target.who

    async def main(core: Core) -> T:
        from tracker.domain.changes import Origin
        from tracker.services.acting import act_as

        access, actor = await act_as(core, org_slug, key, who, Origin.CLI, permission=permission)
        return await work(core, access, actor)

    return run_with_core(data_dir, main)


def _named(items: list[Any], name: str, what: str) -> Any:
    """The item called `name` (case-insensitive) or with that id; NotFound otherwise."""
    from tracker.errors import NotFound

    wanted = name.strip().casefold()
    for item in items:
        if item.id == name or item.name.casefold() == wanted:
            return item
    raise NotFound(f"no {what} '{name}'")


# --- tags ---------------------------------------------------------------------------------


async def _all_tags(core: Core, access: ProjectAccess) -> list[Any]:
    from tracker.domain.models.issues import PageQuery
    from tracker.services import tags

    found: list[Any] = []
    query = PageQuery(limit=200)
    while True:
        page = await tags.list_tags(core, access, query)
        found += page.items
        if not page.next_cursor:
            return found
        query = PageQuery(limit=200, cursor=page.next_cursor)


@tag_app.command("list")
def tag_list(
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List the project's tags."""
    found = _run(data_dir, org, project, user, lambda core, access, _: _all_tags(core, access))
    if as_json:
        print_json(found)
    else:
        print_table([t.model_dump() for t in found], ["name", "color"])


@tag_app.command("create")
def tag_create(
    name: str = typer.Argument(..., help="Tag name."),
    color: str | None = typer.Option(None, help="#rrggbb"),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a tag."""
    from tracker.domain.models.issues import TagIn
    from tracker.services import tags

    data = validated(TagIn, {"name": name, "color": color})
    made = _run(
        data_dir,
        org,
        project,
        user,
        lambda c, a, who: tags.create_tag(c, a, data, who),
        permission=Permission.TAG_CREATE,
    )
    if as_json:
        print_json(made)
    else:
        typer.echo(f"created tag {made.name}")


@tag_app.command("delete")
def tag_delete(
    name: str = typer.Argument(..., help="Tag name or id."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Delete a tag (it comes off every issue)."""
    from tracker.services import tags

    async def work(core: Core, access: ProjectAccess, actor: Actor) -> None:
        tag = _named(await _all_tags(core, access), name, "tag")
        await tags.delete_tag(core, access, tag.id, actor)

    _run(data_dir, org, project, user, work, permission=Permission.PROJECT_MANAGE)
    typer.echo(f"deleted tag {name}")


# --- stages and rules ---------------------------------------------------------------------


@stage_app.command("list")
def stage_list(
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List the stages in board order."""
    from tracker.services import workflow

    found = _run(data_dir, org, project, user, lambda c, a, _: workflow.list_stages(c, a))
    if as_json:
        print_json(found)
    else:
        print_table([s.model_dump() for s in found], ["position", "name", "category"])


@stage_app.command("create")
def stage_create(
    name: str = typer.Argument(..., help="Stage name."),
    category: str = typer.Option(..., help="todo|in_progress|done"),
    position: int | None = typer.Option(None, min=0, help="0-based column (default: last)."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Add a stage."""
    from tracker.domain.models.workflow import StageIn
    from tracker.services import workflow

    data = validated(StageIn, {"name": name, "category": category, "position": position})
    made = _run(
        data_dir,
        org,
        project,
        user,
        lambda c, a, w: workflow.create_stage(c, a, data, w),
        permission=Permission.WORKFLOW_MANAGE,
    )
    if as_json:
        print_json(made)
    else:
        typer.echo(f"created stage {made.name} at position {made.position}")


@stage_app.command("update")
def stage_update(
    stage: str = typer.Argument(..., help="Stage name or id."),
    name: str | None = typer.Option(None, help="New name."),
    category: str | None = typer.Option(None, help="todo|in_progress|done"),
    position: int | None = typer.Option(None, min=0, help="Move to this 0-based column."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Rename, recategorise or move a stage."""
    from tracker.domain.models.workflow import StagePatch
    from tracker.services import workflow

    given = {"name": name, "category": category, "position": position}
    data = validated(StagePatch, {k: v for k, v in given.items() if v is not None})

    async def work(core: Core, access: ProjectAccess, actor: Actor) -> Any:
        found = _named(await workflow.list_stages(core, access), stage, "stage")
        return await workflow.update_stage(core, access, found.id, data, actor)

    made = _run(data_dir, org, project, user, work, permission=Permission.WORKFLOW_MANAGE)
    if as_json:
        print_json(made)
    else:
        typer.echo(f"updated stage {made.name} ({made.category}, position {made.position})")


@stage_app.command("delete")
def stage_delete(
    stage: str = typer.Argument(..., help="Stage name or id."),
    move_to: str | None = typer.Option(
        None, "--move-to", help="Stage that takes its issues (needed when it has any)."
    ),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Delete a stage; its issues move to `--move-to`."""
    from tracker.services import workflow

    async def work(core: Core, access: ProjectAccess, actor: Actor) -> None:
        stages = await workflow.list_stages(core, access)
        target = _named(stages, move_to, "stage").id if move_to else None
        await workflow.delete_stage(core, access, _named(stages, stage, "stage").id, target, actor)

    _run(data_dir, org, project, user, work, permission=Permission.WORKFLOW_MANAGE)
    typer.echo(f"deleted stage {stage}")


async def _rules_by_name(core: Core, access: ProjectAccess) -> list[dict[str, str]]:
    from tracker.services import workflow

    names = {s.id: s.name for s in await workflow.list_stages(core, access)}
    rules = (await workflow.get_transitions(core, access)).rules
    return [
        {"from": names.get(r.from_stage_id, r.from_stage_id),
         "to": names.get(r.to_stage_id, r.to_stage_id), "min_role": r.min_role}
        for r in rules
    ]  # fmt: skip


@stage_app.command("rules")
def stage_rules(
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List the transition rules (none: every move is allowed)."""
    from tracker.services import workflow

    if as_json:
        found = _run(data_dir, org, project, user, lambda c, a, _: workflow.get_transitions(c, a))
        print_json(found)
        return
    rows = _run(data_dir, org, project, user, lambda c, a, _: _rules_by_name(c, a))
    print_table(rows, ["from", "to", "min_role"])
    if not rows:
        typer.echo("(no rules: every move is allowed)")


def _edit_rules(
    data_dir: Path | None, org: str | None, project: str | None, user: str | None,
    change: Callable[[list[dict[str, str]], dict[str, str]], list[dict[str, str]]],
) -> Any:  # fmt: skip
    """Read the rule set, change it by stage names, write it back whole (one change row)."""
    from tracker.domain.models.workflow import TransitionsIn
    from tracker.services import workflow

    async def work(core: Core, access: ProjectAccess, actor: Actor) -> Any:
        stages = await workflow.list_stages(core, access)
        ids = {s.name.casefold(): s.id for s in stages} | {s.id: s.id for s in stages}
        rules = [r.model_dump() for r in (await workflow.get_transitions(core, access)).rules]
        data = validated(TransitionsIn, {"rules": change(rules, ids)})
        return await workflow.put_transitions(core, access, data, actor)

    return _run(data_dir, org, project, user, work, permission=Permission.WORKFLOW_MANAGE)


def _stage_id(ids: dict[str, str], name: str) -> str:
    from tracker.errors import NotFound

    found = ids.get(name) or ids.get(name.strip().casefold())
    if found is None:
        raise NotFound(f"no stage '{name}'")
    return found


@stage_app.command("allow")
def stage_allow(
    from_stage: str = typer.Argument(..., metavar="FROM", help="Stage name."),
    to_stage: str = typer.Argument(..., metavar="TO", help="Stage name."),
    min_role: str = typer.Option("developer", help="reporter|developer|admin"),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Allow moves FROM -> TO (for `--min-role` and above). With rules, only listed moves go."""

    def change(rules: list[dict[str, str]], ids: dict[str, str]) -> list[dict[str, str]]:
        pair = (_stage_id(ids, from_stage), _stage_id(ids, to_stage))
        kept = [r for r in rules if (r["from_stage_id"], r["to_stage_id"]) != pair]
        return [*kept, {"from_stage_id": pair[0], "to_stage_id": pair[1], "min_role": min_role}]

    _edit_rules(data_dir, org, project, user, change)
    typer.echo(f"allowed {from_stage} -> {to_stage} for {min_role} and above")


@stage_app.command("disallow")
def stage_disallow(
    from_stage: str = typer.Argument(..., metavar="FROM", help="Stage name."),
    to_stage: str = typer.Argument(..., metavar="TO", help="Stage name."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Remove the rule FROM -> TO (when no rule is left, every move is allowed)."""

    def change(rules: list[dict[str, str]], ids: dict[str, str]) -> list[dict[str, str]]:
        pair = (_stage_id(ids, from_stage), _stage_id(ids, to_stage))
        return [r for r in rules if (r["from_stage_id"], r["to_stage_id"]) != pair]

    _edit_rules(data_dir, org, project, user, change)
    typer.echo(f"removed the rule {from_stage} -> {to_stage}")


# --- custom fields ------------------------------------------------------------------------


@field_app.command("list")
def field_list(
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """List the custom field definitions."""
    from tracker.services import custom_fields

    found = _run(data_dir, org, project, user, lambda c, a, _: custom_fields.list_fields(c, a))
    if as_json:
        print_json(found)
        return
    rows = [{**f.model_dump(), "options": ", ".join(f.options)} for f in found]
    print_table(rows, ["position", "name", "type", "required", "options"])


@field_app.command("create")
def field_create(
    name: str = typer.Argument(..., help="Field name."),
    type_: str = typer.Option(..., "--type", help="text|number|date|enum|multi_enum|user"),
    option: list[str] | None = typer.Option(None, "--option", help="A choice (repeatable)."),
    required: bool = typer.Option(False, "--required", help="Every issue must have a value."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Define a custom field."""
    from tracker.domain.models.issues import CustomFieldIn
    from tracker.services import custom_fields

    data = validated(
        CustomFieldIn,
        {"name": name, "type": type_, "options": option or [], "required": required},
    )
    made = _run(
        data_dir,
        org,
        project,
        user,
        lambda c, a, w: custom_fields.create_field(c, a, data, w),
        permission=Permission.FIELDS_MANAGE,
    )
    if as_json:
        print_json(made)
    else:
        typer.echo(f"created field {made.name} ({made.type})")


@field_app.command("update")
def field_update(
    field: str = typer.Argument(..., help="Field name or id."),
    name: str | None = typer.Option(None, help="New name."),
    option: list[str] | None = typer.Option(None, "--option", help="Replace the choices."),
    required: bool | None = typer.Option(
        None, "--required/--optional", help="Whether every issue needs a value."
    ),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Rename a field, change its choices or whether it is required (never its type)."""
    from tracker.domain.models.issues import CustomFieldPatch
    from tracker.services import custom_fields

    given = {"name": name, "options": option or None, "required": required}
    data = validated(CustomFieldPatch, {k: v for k, v in given.items() if v is not None})

    async def work(core: Core, access: ProjectAccess, actor: Actor) -> Any:
        found = _named(await custom_fields.list_fields(core, access), field, "field")
        return await custom_fields.update_field(core, access, found.id, data, actor)

    made = _run(data_dir, org, project, user, work, permission=Permission.FIELDS_MANAGE)
    if as_json:
        print_json(made)
    else:
        typer.echo(f"updated field {made.name}")


@field_app.command("delete")
def field_delete(
    field: str = typer.Argument(..., help="Field name or id."),
    org: str | None = OrgOption,
    project: str | None = ProjectOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Delete a field definition (stored values stay, unseen)."""
    from tracker.services import custom_fields

    async def work(core: Core, access: ProjectAccess, actor: Actor) -> None:
        found = _named(await custom_fields.list_fields(core, access), field, "field")
        await custom_fields.delete_field(core, access, found.id, actor)

    _run(data_dir, org, project, user, work, permission=Permission.FIELDS_MANAGE)
    typer.echo(f"deleted field {field}")
