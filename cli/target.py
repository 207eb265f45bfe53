"""Where a command acts and as whom: options, then RHYTHM_ORG/PROJECT/AS, then `rhythm use`.

`rhythm use acme/WEB --as ann@example.com` stores defaults for one data
directory in a small JSON file of the person running the CLI
($RHYTHM_CLI_CONTEXT, default ~/.config/rhythm/context.json), keyed by the
data directory's absolute path; a replica or a server can later be a key too.
Nothing here opens a database: resolving the target is pure file reading.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import typer

from cli import complete
from cli.context import fail

ENV_ORG, ENV_PROJECT, ENV_AS = "RHYTHM_ORG", "RHYTHM_PROJECT", "RHYTHM_AS"

OrgOption = typer.Option(
    None,
    "--org",
    "-o",
    help="Organization slug (default: `rhythm use`, $RHYTHM_ORG).",
    autocompletion=complete.orgs,
)
ProjectOption = typer.Option(
    None,
    "--project",
    "-p",
    help="Project key, e.g. WEB (default: `rhythm use`, $RHYTHM_PROJECT).",
    autocompletion=complete.projects,
)
AsOption = typer.Option(
    None,
    "--as",
    help="Act as this person (email); recorded as the actor (default: `rhythm use`, $RHYTHM_AS).",
)


def store_path() -> Path:
    explicit = os.environ.get("RHYTHM_CLI_CONTEXT")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rhythm" / "context.json"


def data_dir_key(data_dir: Path | None) -> str:
    """The absolute path the settings would resolve (option, $RHYTHM_DATA_DIR, ./tenants)."""
    path = data_dir or Path(os.environ.get("RHYTHM_DATA_DIR") or "tenants")
    return str(path.expanduser().absolute())


def _load_all() -> dict[str, dict[str, str]]:
    path = store_path()
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        fail(f"cannot read the CLI context {path}: {exc}")
    return loaded if isinstance(loaded, dict) else {}


def stored(data_dir: Path | None) -> dict[str, str]:
    """What `rhythm use` stored for this data directory; on a replica (none named and one
    active), what `rhythm clone` set (org, project, you), under what `rhythm use` stored."""
    base: dict[str, str] = {}
    if data_dir is None and not os.environ.get("RHYTHM_DATA_DIR"):
        from tracker.replica.paths import active_replica

        replica = active_replica()
        if replica is not None:
            from cli.offline import defaults

            base = defaults(replica)
            data_dir = replica / "view"
    found = _load_all().get(data_dir_key(data_dir), {})
    return base | {k: v for k, v in found.items() if isinstance(v, str)}


def store(data_dir: Path | None, values: dict[str, str | None]) -> dict[str, str]:
    """Merge `values` (None removes a key) into this data directory's stored context."""
    everything = _load_all()
    key = data_dir_key(data_dir)
    merged: dict[str, str | None] = {**everything.get(key, {}), **values}
    mine = {k: v for k, v in merged.items() if v is not None}
    everything[key] = mine
    path = store_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(everything, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        fail(f"cannot write the CLI context {path}: {exc.strerror or exc}")
    return mine


@dataclass(frozen=True)
class Target:
    """The org, project and person a command acts on; each says how to fix it if missing."""

    data_dir: Path | None
    org_given: str | None = None
    project_given: str | None = None
    who_given: str | None = None

    def _pick(self, given: str | None, env: str, name: str) -> str | None:
        if given:
            return given
        return os.environ.get(env) or stored(self.data_dir).get(name) or None

    @property
    def org_if_any(self) -> str | None:
        return self._pick(self.org_given, ENV_ORG, "org")

    @property
    def org(self) -> str:
        found = self._pick(self.org_given, ENV_ORG, "org")
        if not found:
            fail("no organization: pass --org SLUG or run `rhythm use SLUG[/KEY]`")
        return found

    @property
    def project(self) -> str:
        found = self._pick(self.project_given, ENV_PROJECT, "project")
        if not found:
            fail("no project: pass --project KEY or run `rhythm use ORG/KEY`")
        return found

    @property
    def who(self) -> str | None:
        """The person acting, or None (the operator; changes are logged as the system's)."""
        found = self._pick(self.who_given, ENV_AS, "as")
        return None if found in (None, "me") else found

    def person(self, name: str) -> str:
        """A person named on the command line: an email, a user id, or `me` (= --as)."""
        if name.strip().lower() != "me":
            return name.strip()
        who = self.who
        if who is None:
            fail("`me` needs to know who you are: pass --as EMAIL or run `rhythm use --as EMAIL`")
        return who

    def someone(self, what: str) -> str:
        """Commands that record an author need a person."""
        who = self.who
        if who is None:
            fail(f"name the person who {what}: pass --as EMAIL or run `rhythm use --as EMAIL`")
        return who
