"""The `rhythm` command: one typer app joining one module per command group."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from cli import (
    attachments,
    boards,
    issues,
    mcp_server,
    members,
    orgs,
    projects,
    scripts,
    users,
    watch,
)
from cli.context import DataDirOption, fail, load_settings
from tracker import __version__
from tracker.errors import RhythmError

app = typer.Typer(
    help="Rhythm: a fast, self-hosted issue tracker.", no_args_is_help=True, add_completion=False
)
app.add_typer(users.app, name="user")
app.add_typer(orgs.app, name="org")
app.add_typer(projects.app, name="project")
app.add_typer(members.app, name="member")
app.add_typer(issues.app, name="issue")
attachments.register(issues.app)
app.add_typer(scripts.app, name="script")
app.add_typer(boards.sprint_app, name="sprint")
app.command("board")(boards.board)
app.command("watch")(watch.watch)
app.command("mcp")(mcp_server.mcp)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rhythm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Rhythm: a fast, self-hosted issue tracker."""


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default 8080)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run the HTTP server until interrupted (SIGINT/SIGTERM finish in-flight requests)."""
    import asyncio

    from tracker.core import prepare_data_dir
    from tracker.http.app import AccessLogger, create_app
    from tracker.http.server import serve as serve_http

    settings = load_settings(data_dir, host=host, port=port)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        prepare_data_dir(settings)
        asyncio.run(
            serve_http(
                create_app(settings),
                settings,
                access_log_class=AccessLogger,
                shutdown_timeout=30,
                on_ready=lambda: typer.echo(
                    f"Rhythm {__version__} on http://{settings.host}:{settings.port} "
                    f"(data: {settings.data_dir.resolve()})"
                ),
            )
        )
    except RhythmError as error:
        fail(error.detail)
    except OSError as exc:
        fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")


@app.command()
def migrate(data_dir: Path | None = DataDirOption) -> None:
    """Apply pending migrations to the system database and every tenant."""
    from cli.context import run_with_core
    from tracker.services.maintenance import migrate_all

    count = run_with_core(data_dir, migrate_all)
    typer.echo(f"migrated: system database and {count} tenant(s) are up to date")


@app.command()
def check(
    repair: bool = typer.Option(
        False, "--repair", help="Remove files no attachment names (older than an hour)."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Check every database's integrity and every attachment's file; exit 1 on a fault."""
    from cli.context import run_with_core
    from tracker.services.checks import check_all

    findings = run_with_core(data_dir, lambda core: check_all(core, repair=repair))
    for finding in findings:
        mark = " (repaired)" if finding.repaired else ""
        typer.echo(f"{finding.where}: {finding.problem}{mark}")
    if any(not f.repaired for f in findings):
        raise typer.Exit(1)
    typer.echo("ok" if not findings else "repaired")


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
