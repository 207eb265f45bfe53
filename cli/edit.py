"""`rhythm issue edit WEB-3`: the title and description in $VISUAL/$EDITOR, like `git commit`.

The issue is read (its version noted) and the data directory released before the editor
opens, so other commands and the server's own users go on meanwhile. The change is applied
with If-Match on that version: if someone changed the issue in between, nothing is
overwritten, the command says so (exit 4) and the edited text stays in a file, which
`--from FILE` applies after a look at the new state.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli import issue_args
from cli.context import EXIT_CONFLICT, DataDirOption, JsonOption, fail, print_json, run_with_core
from cli.target import AsOption, OrgOption, Target

if TYPE_CHECKING:
    from tracker.core import Core
    from tracker.domain.models.issues import Issue

SCISSORS = "# ------------------------ >8 ------------------------"
HELP = f"""{SCISSORS}
# The first line is the title; everything after the blank line is the description
# (markdown). Nothing from the line above down is kept. An empty title aborts.
"""


def render(issue: Issue) -> str:
    return f"{issue.title}\n\n{issue.description}\n\n{HELP}"


def parse(text: str) -> tuple[str, str]:
    """(title, description) from the edited text: first line, then the rest."""
    kept = text.split(SCISSORS, 1)[0]
    lines = kept.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return "", ""
    return lines[0].strip(), "\n".join(lines[1:]).strip("\n").rstrip()


def run_editor(path: Path) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        done = subprocess.run([*shlex.split(editor), str(path)], check=False)
    except OSError as exc:
        fail(f"cannot start the editor {editor!r}: {exc.strerror or exc} (set $EDITOR)")
    if done.returncode != 0:
        fail(f"the editor exited with {done.returncode}; nothing changed (text in {path})")


def edit(
    key: str = typer.Argument(..., help="Issue key, e.g. WEB-42."),
    from_file: Path | None = typer.Option(
        None, "--from", exists=True, dir_okay=False, help="Apply this text instead of editing."
    ),
    if_version: int | None = typer.Option(
        None, help="With --from: the version the text was written against (default: current)."
    ),
    org: str | None = OrgOption,
    user: str | None = AsOption,
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Edit the title and description in $EDITOR; a concurrent change is refused, text kept."""
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.who

    async def read(core: Core) -> Issue:
        return (await issue_args.show_issue(core, org_slug, key, who))[0]

    issue = run_with_core(data_dir, read)
    version = issue.version if if_version is None else if_version
    if from_file is not None:
        path = from_file
    else:
        handle, name = tempfile.mkstemp(prefix=f"rhythm-{issue.key}-", suffix=".md")
        path = Path(name)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(render(issue))
        run_editor(path)
    title, description = parse(path.read_text(encoding="utf-8"))
    if not title:
        fail(f"empty title: nothing changed (text in {path})")
    if (title, description) == (issue.title, issue.description) and if_version is None:
        typer.echo(f"no changes to {issue.key}")
        _forget(path, from_file)
        return
    data = {"title": title, "description": description}

    async def write(core: Core) -> Issue | None:
        from tracker.errors import PreconditionFailed

        try:
            return await issue_args.update_issue(core, org_slug, key, data, {}, who, version)
        except PreconditionFailed:
            return None

    changed = run_with_core(data_dir, write)
    if changed is None:
        fail(
            f"{issue.key} changed since version {version}; nothing overwritten. Your text is "
            f"in {path}: look at `rhythm issue show {issue.key}`, then "
            f"`rhythm issue edit {issue.key} --from {path}`",
            EXIT_CONFLICT,
        )
    _forget(path, from_file)
    if as_json:
        print_json(changed)
    else:
        typer.echo(f"updated {changed.key} (v{changed.version}): {changed.title}")


def _forget(path: Path, from_file: Path | None) -> None:
    """The temporary file goes once applied; a file the user named stays theirs."""
    if from_file is None:
        path.unlink(missing_ok=True)
