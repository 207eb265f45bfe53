"""`rhythm issue resolve KEY`: finish an offline text edit the server kept both of.

On a replica only (drafts live in its replica.db, docs/offline.md "Text drafts").
`--take mine` sends your text, `--take theirs` keeps the server's and drops the
draft, `--edit-file FILE` sends the file's text; with none of them, `$EDITOR`
opens the conflict-marked merge when run at a terminal, else the draft is shown.
The chosen text is pushed at once (a sync); offline it waits, pending.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

from cli import offline
from cli.context import EXIT_USAGE, EXIT_USER, JsonOption, fail

TAKES = ("mine", "theirs")


def resolve(
    key: str = typer.Argument(..., help="Issue key, e.g. WEB-42."),
    field: str | None = typer.Option(
        None, "--field", help="Which draft: description or comment:<id> (when several)."
    ),
    take: str | None = typer.Option(
        None, "--take", help="mine (send your text) or theirs (keep the server's, drop yours)."
    ),
    edit_file: Path | None = typer.Option(
        None, "--edit-file", help="Send this file's text (conflict markers refused)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Finish a draft: your text edit overlapped another one (replica only)."""
    from tracker.replica import resolve as drafts

    if take is not None and take not in TAKES:
        fail("--take is mine or theirs", EXIT_USAGE)
    if take is not None and edit_file is not None:
        fail("pass --take or --edit-file, not both", EXIT_USAGE)
    path = offline.replica_path(None)
    if path is None:
        fail("drafts live in a replica: there is none here (`rhythm clone ORG[/PROJECT]`)")
    replica = offline.open_replica(path)
    try:
        draft = offline.guarded(lambda: drafts.find(replica, key, field))
        if take == "theirs":
            drafts.drop(replica, draft)
            _say(as_json, draft, "theirs", None,
                 f"{draft.words}: kept the server's text; your draft is dropped")  # fmt: skip
            return
        text = _chosen_text(draft, take, edit_file)
        if text is None:
            _show(draft, as_json)
            return
        mutation = offline.guarded(lambda: drafts.record(replica, draft, text))
        if mutation is None:
            _say(as_json, draft, "theirs", None,
                 f"{draft.words}: that is the server's text; your draft is dropped")  # fmt: skip
            return
        _push(replica, draft, mutation, take or "file", as_json)
    finally:
        replica.close()


def _chosen_text(draft: Any, take: str | None, edit_file: Path | None) -> str | None:
    if take == "mine":
        return str(draft.mine)
    if edit_file is not None:
        try:
            return edit_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {edit_file}: {exc}", EXIT_USAGE)
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if editor and sys.stdin.isatty() and sys.stdout.isatty():
        with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False, encoding="utf-8") as f:
            f.write(draft.merged)
        try:
            if subprocess.run([*shlex.split(editor), f.name], check=False).returncode != 0:
                fail("the editor failed; nothing was changed")
            return Path(f.name).read_text(encoding="utf-8")
        finally:
            os.unlink(f.name)
    return None


def _show(draft: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"draft": draft.as_dict(), "action": None}, indent=2) + "\n")
        return
    state = " (a resolution is pending: `rhythm sync` sends it)" if draft.resolving else ""
    typer.echo(f"{draft.words}: both edited, the server kept its text{state}")
    typer.echo(f"--- the merge, with conflict markers ---\n{draft.merged}")
    typer.echo(f"finish it: {draft.command} --take mine | --take theirs | --edit-file FILE")


def _push(replica: Any, draft: Any, mutation: Any, action: str, as_json: bool) -> None:
    """Send it now; offline (or refused before any answer) it stays pending."""
    from tracker.replica import words
    from tracker.replica.errors import SyncError

    try:
        report = offline.run_async_raw(lambda: offline.exchange(replica, push=True, pull=True))
    except SyncError as error:
        said = f"{draft.words}: recorded; not sent ({error.words()}); `rhythm sync` sends it"
        _say(as_json, draft, action, None, said)
        raise typer.Exit(EXIT_USER) from None
    result = next((r for m, r in report.pushed if m["args"] == mutation.args
                   and m["name"] == mutation.name), None)  # fmt: skip
    status = (result or {}).get("status")
    again = [d for d in report.drafts if d.issue_id == draft.issue_id and d.field == draft.field]
    if again:
        said = (f"{draft.words}: edited again meanwhile, and overlapping; a new draft —"
                f" `{again[0].command}`")  # fmt: skip
    elif status == "rejected":
        said = (f"{draft.words}: REJECTED: {words.reason(result or {})}."
                " Text kept: rhythm sync --rejected")  # fmt: skip
    elif status is None:
        said = f"{draft.words}: recorded, still pending (`rhythm sync` sends it)"
    else:
        said = f"{draft.words}: resolved ({status}); the draft is gone"
    if as_json:
        body = {"draft": draft.as_dict(), "action": action, "result": result,
                "sync": words.as_json(report)}  # fmt: skip
        sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")
    else:
        for line in words.lines(report):
            typer.echo(line)
        typer.echo(said)
    if status == "rejected":
        raise typer.Exit(offline.EXIT_REJECTED)


def _say(as_json: bool, draft: Any, action: str, result: Any, text: str) -> None:
    if as_json:
        body = {"draft": draft.as_dict(), "action": action, "result": result, "said": text}
        sys.stdout.write(json.dumps(body, indent=2, default=str) + "\n")
    else:
        typer.echo(text)
