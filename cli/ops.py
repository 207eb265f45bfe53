"""`rhythm backup` and `rhythm restore` (docs/operations-data.md).

`backup` runs beside a live server: it asks that server to copy each database in
page batches from the connection it owns (cli/backup_client.py), or, when no
server answers, reads each database from its own read-only snapshot; it never
takes the data-dir lock. `restore` takes the lock,
so it refuses to run while a server serves the directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from cli.context import DataDirOption, exit_code_of, fail, load_settings, must_exist
from tracker.errors import RhythmError


def plain_path(path: Path) -> Path:
    """Refuse a path with control characters: never a name anyone meant to create."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in str(path)):
        fail(f"refusing a path with control characters: {str(path)!r}")
    return path


def backup(
    dest: Path = typer.Argument(..., help="A new (or empty) directory to write the backup to."),
    org: str | None = typer.Option(None, "--org", help="Only this organization (by slug)."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Back up the system DB and every organization (or one), online: the server may run."""
    from cli.backup_client import via_server

    settings = load_settings(data_dir)
    must_exist(settings)
    target = Path(os.path.abspath(plain_path(dest)))  # the server's working dir is not ours
    try:
        done = via_server(settings.data_dir, target, org)
        if done is not None:
            manifest, seconds, how = done["manifest"], float(done["seconds"]), " by the server"
        else:
            from tracker.services.backups import backup as take

            report = take(settings, target, org)
            manifest, seconds, how = report.manifest, report.seconds, ""
    except RhythmError as error:
        fail(error.detail, exit_code_of(error))
    except OSError as exc:
        fail(f"backup failed: {exc}")
    orgs = manifest["orgs"]
    files = sum(o["files"] for o in orgs)
    typer.echo(
        f"backed up system database and {len(orgs)} organization(s), {files} attachment "
        f"file(s) to {dest}{how} in {seconds:.1f} s"
    )
    for missing in manifest["missing_files"]:
        typer.echo(f"warning: attachment file missing (not in the backup): {missing}", err=True)


def restore(
    src: Path = typer.Argument(..., help="A directory written by `rhythm backup`."),
    replace: bool = typer.Option(
        False, "--replace", help="Replace existing data (moved to .before-restore-*, not deleted)."
    ),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Restore a backup onto a stopped server; every restored org gets a new sync epoch."""
    from tracker.services.backups import restore as put_back

    settings = load_settings(data_dir)
    try:
        done = put_back(settings, src, replace=replace)
    except RhythmError as error:
        fail(error.detail, exit_code_of(error))
    except OSError as exc:
        if os.environ.get("RHYTHM_TRACEBACK"):
            raise
        fail(f"restore failed: {exc}")
    typer.echo(f"restored {done['scope']} backup: {len(done['orgs'])} organization(s)")
    if done["moved_aside"]:
        typer.echo(f"previous data moved to {done['moved_aside']}")
