"""`rhythm use acme/WEB --as ann@example.com` and `rhythm status`: the stored context.

Precedence, highest first: command-line options, RHYTHM_ORG / RHYTHM_PROJECT /
RHYTHM_AS, then what `rhythm use` stored for the data directory (cli/target.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from cli.context import DataDirOption, JsonOption, fail, print_json
from cli.target import ENV_AS, ENV_ORG, ENV_PROJECT, data_dir_key, store, store_path, stored

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$", re.IGNORECASE)
KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,9}$")
PERSON = re.compile(r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+$")


def use(
    where: str | None = typer.Argument(
        None, metavar="[ORG[/KEY]]", help="Organization slug, optionally /project key."
    ),
    user: str | None = typer.Option(None, "--as", help="Act as this person (email) by default."),
    clear: bool = typer.Option(False, "--clear", help="Forget the stored context first."),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Remember an organization, project and person for this data directory."""
    if where is None and user is None and not clear:
        fail("name what to use: `rhythm use ORG[/KEY] [--as EMAIL]` (or --clear)")
    values: dict[str, str | None] = {"org": None, "project": None, "as": None} if clear else {}
    if where is not None:
        org, _, project = where.strip().partition("/")
        if not SLUG.match(org) or (project and not KEY.match(project)):
            fail(f"expected ORG or ORG/KEY such as acme/WEB, got {where!r}")
        values |= {"org": org.lower(), "project": project.upper() or None}
    if user is not None:
        if user.strip() and not PERSON.match(user.strip()):
            fail(f"--as expects an email, got {user!r}")
        values["as"] = user.strip() or None
    now = store(data_dir, values)
    typer.echo(f"using {_describe(now)} on {data_dir_key(data_dir)}")


def stored_by_clone(replica: Path) -> dict[str, str]:
    from cli.offline import defaults

    return defaults(replica)


def _describe(values: dict[str, str]) -> str:
    if not values:
        return "nothing"
    where = values.get("org", "(no org)") + (f"/{values['project']}" if "project" in values else "")
    return where + (f" as {values['as']}" if "as" in values else "")


def status(data_dir: Path | None = DataDirOption, as_json: bool = JsonOption) -> None:
    """Show where commands act and as whom, and where each value comes from."""
    saved = stored(data_dir)
    from cli.offline import replica_path

    replica = replica_path(data_dir)
    cloned = {} if replica is None else stored_by_clone(replica)
    rows: dict[str, dict[str, str | None]] = {}
    for name, env in (("org", ENV_ORG), ("project", ENV_PROJECT), ("as", ENV_AS)):
        if os.environ.get(env):
            rows[name] = {"value": os.environ[env], "from": f"${env}"}
        elif name in saved:
            origin = "rhythm clone" if cloned.get(name) == saved[name] else "rhythm use"
            rows[name] = {"value": saved[name], "from": origin}
        else:
            rows[name] = {"value": None, "from": None}
    key = data_dir_key(data_dir if replica is None else replica / "view")
    is_data_dir = (Path(key) / "_system.db").is_file()
    if as_json:
        print_json({"data_dir": key, "is_data_dir": is_data_dir, "context_file": str(store_path()),
                    **rows})  # fmt: skip
        return
    if replica is None:
        typer.echo(f"data dir: {key}" + ("" if is_data_dir else " (not a Rhythm data directory)"))
    for name, row in rows.items():
        shown = row["value"] or "-"
        typer.echo(f"{name:>8}: {shown}" + (f"  (from {row['from']})" if row["from"] else ""))
    if rows["org"]["value"] is None:
        typer.echo("set one with `rhythm use ORG/KEY --as EMAIL`")
    if data_dir is None:
        from cli.offline import status_lines

        for line in status_lines():
            typer.echo(line)
