"""Every `rhythm` command, walked from typer's own parameter tree: help tells the truth,
garbage is one line and never a traceback, reads create nothing, `--json` is the API's shape."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from typer._click.core import Context
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.testing import CliRunner

from cli.main import app
from tests.cli_world import ACME_SETUP, ANN, cli_on

ROOT = typer.main.get_command(app)
runner = CliRunner()


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command, through the group's own list_commands/get_command (lazy groups too)."""
    if isinstance(command, TyperGroup):
        ctx = Context(command)
        found = []
        for name in command.list_commands(ctx):
            found += _walk(command.get_command(ctx, name), (*path, name))
        return found
    return [(path, command)]


COMMANDS = _walk(ROOT)
IDS = [" ".join(path) for path, _ in COMMANDS]
#: Commands that may bring a data directory into being.
CREATORS = {("user", "create"), ("org", "create"), ("migrate",), ("serve",)}


def test_the_walk_finds_every_group() -> None:
    names = {path[0] for path, _ in COMMANDS}
    assert "tracker.core" in sys.modules  # (the walk imported every group)
    assert {"user", "org", "project", "member", "issue", "sprint", "board", "tag", "stage",
            "field", "search", "use", "status", "serve", "migrate"} <= names  # fmt: skip
    assert len(COMMANDS) >= 50


def test_a_command_imports_only_its_group() -> None:
    """Start-up time: `rhythm issue list` must not import the server or other groups."""
    code = (
        "import sys; from cli.main import app\n"
        "try: app(['issue', 'list', '--data-dir', '/nonexistent/x'])\n"
        "except SystemExit: pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('cli.', 'aiohttp')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent).stdout  # fmt: skip
    loaded = set(out.split())
    assert "cli.issues" in loaded
    assert not loaded & {"cli.boards", "cli.workflow", "cli.saved", "cli.members", "cli.search",
                         "cli.edit", "cli.attachments", "aiohttp"}  # fmt: skip


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_tells_the_truth(path: tuple[str, ...], command: Any) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "<bool>" not in text  # flags are flags: `--json`, never `--json <bool>`
    rows = {line for line in text.splitlines() if "│" in line}
    for param in command.params:
        if not isinstance(param, TyperOption):
            continue
        long = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        row = next(r for r in rows if re.search(rf"{re.escape(long)}\b", r))
        if param.is_flag:
            assert param.nargs == 0 or param.is_bool_flag, long
        if param.prompt:  # prompted options are not "required": they say they prompt
            assert not param.required and "prompt" in (param.help or ""), long
        if param.required:
            assert row.lstrip("│ ").startswith("*"), f"{long} is required but not marked"
        if (param.help or "").startswith(("Reporter", "Author", "Who ", "Importing", "Email of")):
            assert "required" in param.help, long  # needs a person: says where one comes from
    for param in command.params:
        if isinstance(param, TyperArgument) and param.required:
            assert "[required]" in text
    if any(o == "--json" for p in command.params for o in p.opts):
        json_param = next(p for p in command.params if "--json" in p.opts)
        assert json_param.is_flag


JUNK = '"\x01@@ WEB-99999999999999999999'


def _garbage_args(path: tuple[str, ...], command: Any, target: bool = True) -> list[str] | None:
    """Garbage in every required place (and in --org/--project/--as when `target`);
    None when the command takes nothing required."""
    junk = JUNK
    args: list[str] = []
    for param in command.params:
        if isinstance(param, TyperArgument) and param.required:
            args.append(junk)
        elif isinstance(param, TyperOption) and param.required:
            args += [param.opts[0], junk]
    names = {o for p in command.params for o in p.opts}
    for option, good in (("--org", "acme"), ("--project", "WEB"), ("--as", ANN)):
        if option in names and option not in args:
            args += [option, junk if target else good]
    if path in {("user", "create")}:
        args += ["--password", "x"]
    return args if args else None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return cli_on(tmp_path_factory.mktemp("garbage") / "data", ACME_SETUP)


def _one_line_error(result: Any) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:"), result.stderr


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_garbage_is_one_line_never_a_traceback(
    path: tuple[str, ...], command: Any, world: Any
) -> None:
    unknown = world(*path, "--no-such-option-x")
    assert unknown.exit_code == 2, unknown.output
    _one_line_error(unknown)
    args = _garbage_args(path, command)
    if args is None:  # nothing to fill in: an extra argument is the garbage
        args = ["garbage-argument"]
    result = world(*path, *args, input="")
    assert result.exit_code not in (0, 6), result.output
    _one_line_error(result)
    # the same garbage inside a real org, project and person reaches the services
    inner = _garbage_args(path, command, target=False)
    if inner and any(a == JUNK for a in inner):
        result = world(*path, *inner, input="")
        if path in FREE_TEXT and result.exit_code == 0:
            return  # a title or name is data: the API takes any text there too
        assert result.exit_code not in (0, 6), (inner, result.output)
        _one_line_error(result)


#: Commands whose required argument is free text (a title, a name) or names what such a
#: command just created from the same text: garbage there can be valid.
FREE_TEXT = {
    ("org", "create"), ("issue", "create"), ("sprint", "create"), ("sprint", "update"),
    ("sprint", "burndown"), ("sprint", "board"), ("tag", "create"), ("tag", "delete"),
    ("stage", "create"), ("field", "create"), ("search", "save"), ("issue", "comment"),
}  # fmt: skip


READS: list[tuple[str, ...]] = [
    ("user", "list"), ("org", "list"), ("project", "list", "acme"), ("member", "list", "acme"),
    ("issue", "list", "-o", "acme", "-p", "WEB"), ("issue", "show", "WEB-1", "-o", "acme"),
    ("issue", "search", "x", "-o", "acme"), ("issue", "comments", "WEB-1", "-o", "acme"),
    ("issue", "history", "WEB-1", "-o", "acme"), ("board", "-o", "acme", "-p", "WEB"),
    ("sprint", "list", "-o", "acme", "-p", "WEB"), ("tag", "list", "-o", "acme", "-p", "WEB"),
    ("stage", "list", "-o", "acme", "-p", "WEB"), ("field", "list", "-o", "acme", "-p", "WEB"),
    ("search", "list", "--as", ANN),
    # writes refuse too: only user/org create, migrate and serve start a data directory
    ("issue", "create", "x", "-o", "acme", "-p", "WEB", "--as", ANN),
    ("project", "create", "acme", "WEB", "Web"),
]  # fmt: skip


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")
    )


@pytest.mark.parametrize("args", READS, ids=[" ".join(a[:2]) for a in READS])
def test_reads_refuse_what_is_not_a_data_dir_and_create_nothing(
    args: tuple[str, ...], world: Any, tmp_path: Path
) -> None:
    data_dir = Path(world.data_dir)
    tenant = next(p for p in sorted(data_dir.iterdir()) if (p / "tracker.db").is_file())
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello")
    before_tenant, before_tmp = _tree(tenant), _tree(tmp_path)
    for where, message in (
        (tmp_path / "no" / "such" / "dir", "no data directory"),
        (tenant, "organization's folder"),
        (a_file, "not a directory"),
    ):
        result = runner.invoke(app, [*args, "--data-dir", str(where)],
                               env={"RHYTHM_CLI_CONTEXT": str(tmp_path / "ctx.json")})  # fmt: skip
        assert result.exit_code == 1, result.output
        _one_line_error(result)
        assert message in result.stderr
    assert _tree(tenant) == before_tenant
    assert _tree(tmp_path) == before_tmp
    assert not (tmp_path / "no").exists()


# --- --json is the API's JSON ---------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from tracker.http.openapi import build_openapi
    from tracker.http.routes import all_routes

    return build_openapi(all_routes())


def _schema_of(spec: dict[str, Any], method: str, path: str, status: str) -> dict[str, Any]:
    response = spec["paths"]["/api/v1" + path][method]["responses"][status]
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": spec["components"]}


P = "/orgs/{org}/projects/{project}"
#: (command, method, route, status): each command's --json against its route's response.
JSON_COMMANDS: list[tuple[tuple[str, ...], str, str, str]] = [
    (("user", "list"), "get", "/users/me", "200"),  # items are User; checked item by item
    (("org", "list"), "get", "/orgs", "200"),
    (("project", "list", "acme"), "get", "/orgs/{org}/projects", "200"),
    (("member", "list", "acme"), "get", "/orgs/{org}/members", "200"),
    (("member", "list", "acme", "-p", "WEB"), "get", P + "/members", "200"),
    (("issue", "create", "Json", "--as", ANN), "post", P + "/issues", "201"),
    (("issue", "list"), "get", P + "/issues", "200"),
    (("issue", "show", "WEB-1"), "get", P + "/issues/{n}", "200"),
    (("issue", "update", "WEB-1", "--priority", "major"), "patch", P + "/issues/{n}", "200"),
    (("issue", "comment", "WEB-1", "hi", "--as", ANN), "post", P + "/issues/{n}/comments", "201"),
    (("issue", "comments", "WEB-1"), "get", P + "/issues/{n}/comments", "200"),
    (("issue", "history", "WEB-1"), "get", P + "/issues/{n}/history", "200"),
    (("issue", "link", "WEB-1", "relates_to", "WEB-2"), "post", P + "/issues/{n}/relations",
     "201"),
    (("issue", "links", "WEB-1"), "get", P + "/issues/{n}/relations", "200"),
    (("issue", "log-time", "WEB-1", "1h", "--as", ANN), "post", P + "/issues/{n}/time-entries",
     "201"),
    (("issue", "search", "json"), "get", "/orgs/{org}/issues", "200"),
    (("issue", "watch", "WEB-2", "--as", ANN), "put", P + "/issues/{n}/watchers/me", "200"),
    (("issue", "watchers", "WEB-2"), "get", P + "/issues/{n}/watchers", "200"),
    (("board",), "get", P + "/board", "200"),
    (("sprint", "create", "S9"), "post", P + "/sprints", "201"),
    (("sprint", "update", "S9", "--goal", "g"), "patch", P + "/sprints/{sprint_id}", "200"),
    (("sprint", "list"), "get", P + "/sprints", "200"),
    (("sprint", "burndown", "S9"), "get", P + "/sprints/{sprint_id}/burndown", "200"),
    (("sprint", "board", "S9"), "get", P + "/sprints/{sprint_id}/board", "200"),
    (("tag", "create", "jsontag"), "post", P + "/tags", "201"),
    (("tag", "list"), "get", P + "/tags", "200"),
    (("stage", "list"), "get", P + "/stages", "200"),
    (("stage", "rules"), "get", P + "/transitions", "200"),
    (("field", "create", "Size", "--type", "number"), "post", P + "/fields", "201"),
    (("field", "list"), "get", P + "/fields", "200"),
    (("search", "save", "mine", "assignee:me", "--as", ANN), "post", "/users/me/searches", "201"),
    (("search", "list", "--as", ANN), "get", "/users/me/searches", "200"),
]  # fmt: skip


def test_json_output_is_the_apis_shape(spec: dict[str, Any], tmp_path: Path) -> None:
    rhythm = cli_on(tmp_path / "data", ACME_SETUP)
    os.environ.pop("RHYTHM_ORG", None)
    assert rhythm("use", "acme/WEB").exit_code == 0
    for title in ("one", "two"):
        assert rhythm("issue", "create", title, "--as", ANN).exit_code == 0
    for args, method, route, status in JSON_COMMANDS:
        result = rhythm(*args, "--json")
        assert result.exit_code == 0, (args, result.output)
        document = json.loads(result.stdout)
        schema = _schema_of(spec, method, route, status)
        if args == ("user", "list"):
            for user in document["items"]:
                jsonschema.validate(user, schema)
            continue
        try:
            jsonschema.validate(document, schema)
        except jsonschema.ValidationError as exc:
            raise AssertionError(f"{' '.join(args)}: {exc.message}") from None


def test_tables_are_rich_on_a_terminal_and_tab_separated_in_a_pipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from cli.context import print_table

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    rows = [{"key": "WEB-1", "title": "tab\there\nnewline"}, {"key": "WEB-2", "title": None}]
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stdout", piped)
    print_table(rows, ["key", "title"], title="Issues")
    assert piped.getvalue() == "# Issues\nkey\ttitle\nWEB-1\ttab here newline\nWEB-2\t\n"
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("COLUMNS", "100")
    print_table(rows, ["key", "title"], title="Issues")
    drawn = terminal.getvalue()
    assert "┏" in drawn and "key" in drawn and "│ WEB-1 │" in drawn and "\t" not in drawn
