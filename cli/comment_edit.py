"""`rhythm issue comment-edit KEY COMMENT_ID TEXT`: rewrite your own comment.

On a data directory it is the REST PATCH's service call (only the author edits; `--as`
names the author). On a replica it records a `comment.edit` mutation whose base is the
text the view shows, so `rhythm sync` 3-way merges it with any edit made meanwhile and
an overlap comes back as a draft (`rhythm issue resolve KEY --field comment:<id>`,
docs/offline.md "Text drafts"). Same command, same words, either way.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli import complete, issue_args, offline
from cli.context import DataDirOption, JsonOption, print_json, run_with_core
from cli.target import OrgOption, Target


def comment_edit(
    key: str = typer.Argument(
        ..., help="Issue key, e.g. WEB-42.", autocompletion=complete.issue_keys
    ),
    comment_id: str = typer.Argument(
        ..., metavar="COMMENT_ID", help="The comment's id (`rhythm issue comments KEY`)."
    ),
    body: str = typer.Argument(..., metavar="TEXT", help="The new text (markdown)."),
    org: str | None = OrgOption,
    user: str | None = typer.Option(
        None, "--as", help="Author's email (required: here, `rhythm use --as` or $RHYTHM_AS)."
    ),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Edit your comment's text (only its author may)."""
    if (replica := offline.replica_path(data_dir)) is not None:
        offline.edit_comment(replica, key, comment_id, body)
        return
    target = Target(data_dir, org, None, user)
    org_slug, who = target.org, target.someone("wrote the comment")
    made = run_with_core(
        data_dir, lambda core: issue_args.edit_comment(core, org_slug, key, comment_id, body, who)
    )
    if as_json:
        print_json(made)
    else:
        typer.echo(f"edited comment {made.id} on {key.upper()} (v{made.version})")
