"""The `rhythm` command: one typer app joining one module per command group."""

from __future__ import annotations

import sys

if __name__ == "__main__":  # `python -m cli.main`: the fast read path first (cli/fast.py)
    from cli.fast import run as run_fast

    if run_fast(sys.argv[1:]):
        sys.exit(0)

from pathlib import Path
from typing import Any

import typer

from cli.context import DataDirOption, fail, load_settings
from cli.shell import RhythmGroup
from tracker import __version__
from tracker.errors import RhythmError

#: Every command group and top-level command, in help order: (name, "module:attribute"),
#: a typer app (a group) or a function (one command). New groups join this list. They are
#: imported only when run (or listed by --help), so `rhythm issue list` loads the issue
#: commands and nothing else (start-up time: docs/cli.md).
GROUPS: list[tuple[str, str]] = [
    ("user", "cli.users:app"),
    ("org", "cli.orgs:app"),
    ("project", "cli.projects:app"),
    ("member", "cli.members:app"),
    ("issue", "cli.issues:app"),
    ("script", "cli.scripts:app"),
    ("board", "cli.boards:board"),
    ("sprint", "cli.boards:sprint_app"),
    ("tag", "cli.workflow:tag_app"),
    ("stage", "cli.workflow:stage_app"),
    ("field", "cli.workflow:field_app"),
    ("search", "cli.saved:app"),
    ("use", "cli.use:use"),
    ("status", "cli.use:status"),
    ("watch", "cli.watch:watch"),
    ("mcp", "cli.mcp_server:mcp"),
    ("backup", "cli.ops:backup"),
    ("restore", "cli.ops:restore"),
    ("login", "cli.offline:login"),
    ("clone", "cli.offline:clone"),
    ("sync", "cli.offline:sync"),
    ("pull", "cli.offline:pull"),
    ("push", "cli.offline:push"),
    ("scope", "cli.scope:app"),
]


class Rhythm(RhythmGroup):
    lazy = dict(GROUPS)

    def main(self, args: Any = None, *rest: Any, **extra: Any) -> Any:
        """Provisional keys (`WEB-~3fa9c`) typed anywhere resolve through the replica."""
        words = list(sys.argv[1:] if args is None else args)
        if any("-~" in word for word in words):
            from cli.offline import rewrite_args

            words = rewrite_args(words)
        return super().main(words, *rest, **extra)


app = typer.Typer(
    cls=Rhythm,
    help="Rhythm: a fast, self-hosted issue tracker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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

    from tracker.core import prepare_data_dir, prepare_server_process
    from tracker.http.access_log import AccessLogger
    from tracker.http.app import create_app
    from tracker.http.server import serve as serve_http
    from tracker.logs import configure as configure_logging

    settings = load_settings(data_dir, host=host, port=port)
    configure_logging(settings)  # text or JSON lines (RHYTHM_LOG_FORMAT)
    prepare_server_process(settings)  # before the first database opens
    try:
        prepare_data_dir(settings)  # serve may start a new data directory
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

    count = run_with_core(data_dir, migrate_all, create=True)
    typer.echo(f"migrated: system database and {count} tenant(s) are up to date")


@app.command()
def check(
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Rebuild the search index, recount board columns, remove files no attachment "
        "names (older than an hour).",
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Check every database's integrity, search index, board counts and attachment files;
    exit 1 naming each fault (docs/operations-data.md)."""
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
