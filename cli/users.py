"""`rhythm user ...`: accounts on a data directory, no server needed."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from cli.context import DataDirOption, JsonOption, fail, print_json, run_with_core
from tracker.domain.models.accounts import RegisterIn
from tracker.errors import ValidationFailed
from tracker.services import accounts

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)


@app.command("create")
def create(
    email: str = typer.Argument(..., help="Login email."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters."
    ),
    display_name: str = typer.Option("", "--name", help="Display name."),
    data_dir: Path | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a user account."""
    try:
        data = RegisterIn(email=email, password=password, display_name=display_name)
    except ValidationError as exc:
        fail(ValidationFailed.from_pydantic(exc).detail)
    user = run_with_core(data_dir, lambda core: accounts.register(core, data))
    if as_json:
        print_json(user)
    else:
        typer.echo(f"created user {user.email} ({user.id})")
