"""`rhythm user create|list`: accounts on a data directory, no server needed."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.context import (
    DataDirOption,
    JsonOption,
    QuietOption,
    print_ids,
    print_json,
    print_table,
    run_with_core,
)
from cli.issue_args import validated

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)


@app.command("create")
def create(
    email: str = typer.Argument(..., help="Login email."),
    password: str | None = typer.Option(
        None,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="At least 8 characters (prompted for, twice, when not given).",
    ),
    display_name: str = typer.Option("", "--name", help="Display name."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a user account (the first one starts a new data directory)."""
    from tracker.domain.models.accounts import RegisterIn
    from tracker.services import accounts

    data = validated(
        RegisterIn, {"email": email, "password": password or "", "display_name": display_name}
    )
    user = run_with_core(data_dir, lambda core: accounts.register(core, data), create=True)
    if as_json:
        print_json(user)
    else:
        typer.echo(f"created user {user.display_name or user.email} <{user.email}> ({user.id})")


@app.command("list")
def list_users(
    limit: int = typer.Option(200, min=1, max=1000, help="How many accounts."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """List the accounts of this data directory, by email."""
    from tracker.services import accounts

    page = run_with_core(data_dir, lambda core: accounts.list_users(core, limit, None))
    if as_json:
        print_json(page)
    elif quiet:
        print_ids([u.email for u in page.items])
    else:
        print_table([u.model_dump() for u in page.items], ["email", "display_name", "created_at"])
        if page.next_cursor:
            typer.echo(f"(more than {limit}; raise --limit)")
