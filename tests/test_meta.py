"""Meta tests that keep the house in shape: import layers, the route table, the docs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tracker
from tracker.domain.permissions import RULES, Permission
from tracker.http.binding import API_PREFIX, Route
from tracker.http.openapi import build_openapi
from tracker.http.routes import all_routes
from tracker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# STYLE.md "What may import what", top to bottom. A module may import its own
# layer and any layer below; siblings that share a rank may not import each other.
LAYERS: list[tuple[str, int]] = [
    ("cli", 8),
    ("tracker.http", 7),
    # the web UI: a door the HTTP app mounts (so below it); it calls services like the others
    ("tracker.ui", 6),
    ("tracker.core", 5),
    # the offline replica (client side of sync): below the CLI, beside the core
    ("tracker.replica", 5),
    ("tracker.services", 4),
    ("tracker.storage", 3),
    ("tracker.auth", 3),
    ("tracker.scripting", 3),
    ("tracker.sync", 3),
    ("tracker.outbound", 3),
    ("tracker.domain", 2),
    ("tracker.settings", 1),
    ("tracker.errors", 1),
    # tracker/__init__.py: the version, and create_app loaded lazily on first use
    # (the test below proves `import tracker` stays cheap); last, as it is a prefix.
    ("tracker", 9),
]
# The doors never touch SQL directly.
FORBIDDEN = {
    "cli": ("tracker.storage",),
    "tracker.http": ("tracker.storage",),
    "tracker.ui": ("tracker.storage",),
}
DOMAIN_FORBIDDEN_MODULES = ("aiohttp", "sqlite3", "aiosqlite", "lupa", "jwt", "typer", "asyncio")


def layer_of(module: str) -> tuple[str, int] | None:
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix, rank
    return None


def python_modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("tracker", "cli"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(p for p in parts if p != "__init__")
            found.append((name, path))
    return found


def runtime_imports(tree: ast.Module) -> list[str]:
    """Imported module names, skipping `if TYPE_CHECKING:` blocks."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                names.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names.append(child.module)
                names.extend(f"{child.module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return names


def test_import_layers_are_respected() -> None:
    problems = []
    for name, path in python_modules():
        own = layer_of(name)
        assert own is not None, f"{name} belongs to no layer; add it to LAYERS"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for imported in runtime_imports(tree):
            if own[0] == "tracker.domain" and imported.split(".")[0] in DOMAIN_FORBIDDEN_MODULES:
                problems.append(f"{name} (pure domain) imports {imported}")
            target = layer_of(imported)
            if target is None or target[0] == own[0]:
                continue
            if imported.startswith(FORBIDDEN.get(own[0], ("-",))):
                problems.append(f"{name} imports {imported} (doors never touch storage)")
            elif target[1] >= own[1] and target[0] != "tracker":
                problems.append(f"{name} imports {imported} (same rank or above)")
    assert problems == []


def test_import_tracker_is_cheap_and_exports_create_app() -> None:
    """`import tracker` loads no HTTP layer; `tracker.create_app` loads it on first use."""
    code = (
        "import sys, tracker\n"
        "assert 'aiohttp' not in sys.modules and 'tracker.http' not in sys.modules\n"
        "from tracker.http.app import create_app\n"
        "assert tracker.create_app is create_app\n"
        "from tracker import create_app as again\n"
        "assert again is create_app\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    with pytest.raises(AttributeError):
        tracker.no_such_name  # noqa: B018


def test_tracker_never_imports_cli() -> None:
    for name, path in python_modules():
        if name.startswith("tracker"):
            imports = runtime_imports(ast.parse(path.read_text(encoding="utf-8")))
            assert not any(i == "cli" or i.startswith("cli.") for i in imports), name


def test_every_route_names_a_known_permission() -> None:
    routes = all_routes()
    assert routes
    for route in routes:
        assert isinstance(route.permission, Permission), route.path
        assert route.permission in RULES, route.path


def test_routes_are_unique() -> None:
    keys = [(r.method, r.path) for r in all_routes()]
    assert len(keys) == len(set(keys))


def test_openapi_is_3_1_and_lists_every_route() -> None:
    document = build_openapi(all_routes())
    assert document["openapi"] == "3.1.0"
    for route in all_routes():
        operation = document["paths"][route.full_path][route.method.lower()]
        assert operation["x-permission"] == str(route.permission)
        assert str(route.status) in operation["responses"]


def test_openapi_validates_against_the_3_1_schema() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(build_openapi(all_routes()))


async def test_openapi_document_is_served(client: object) -> None:
    response = await client.get(API_PREFIX + "/docs/openapi.json")  # type: ignore[attr-defined]
    document = await response.json()
    assert set(document["paths"]) == {r.full_path for r in all_routes()}
    page = await client.get(API_PREFIX + "/docs")  # type: ignore[attr-defined]
    assert page.status == 200 and "openapi.json" in await page.text()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [n for n in Settings.model_fields if f"RHYTHM_{n.upper()}" not in readme]
    assert missing == []


def test_route_dataclass_fields_are_stable() -> None:
    assert {"method", "path", "handler", "permission", "summary"} <= set(Route.__dataclass_fields__)


def test_the_app_serves_the_json_table_plus_the_socket_routes(tmp_path: Path) -> None:
    """WebSocket routes live outside the JSON route table (and OpenAPI) on purpose, in
    tracker/http/ws.py's SOCKET_ROUTES, each naming a permission; nothing else is served."""
    from tracker.http.app import create_app
    from tracker.http.handlers.docs import DOCS_ASSETS_PATH
    from tracker.http.metrics import METRICS_PATH
    from tracker.http.ws import SOCKET_ROUTES
    from tracker.ui import ui_routes

    app = create_app(Settings(data_dir=tmp_path))
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    table = {(r.method, r.full_path) for r in all_routes()}
    sockets = {("GET", r.full_path) for r in SOCKET_ROUTES}
    # the web UI's pages and static files, and the API reference page's files (HTML and
    # assets, not API operations); tests/test_ui_security.py checks the UI's own list
    pages = ui_routes() | {("GET", DOCS_ASSETS_PATH)}
    metrics = {("GET", METRICS_PATH)}  # Prometheus text, not an API operation
    assert served == table | sockets | pages | metrics
    assert not table & sockets
    for route in SOCKET_ROUTES:
        assert route.permission in RULES, route.path
    assert not {r.full_path for r in SOCKET_ROUTES} & set(build_openapi(all_routes())["paths"])


def _functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    return [node.name for node in ast.walk(tree) if isinstance(node, kinds)]


def test_act_as_is_the_only_way_to_act_as_someone() -> None:
    """No per-feature `*_as` door in the services: the CLI, scripts and sync call
    `services.acting.act_as`, then the ordinary service function."""
    doors = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "tracker" / "services").rglob("*.py")
        for name in _functions(path)
        if name.endswith("_as") and name != "act_as"
    ]
    assert doors == []
    assert "act_as" in _functions(ROOT / "tracker" / "services" / "acting.py")


def test_services_take_typed_access_and_never_assert_it() -> None:
    """Org and project come typed (OrgAccess/ProjectAccess), so nothing checks them again."""
    # `read` and `mutate` themselves, the import holding its tenant for a checkpoint
    # setting, maintenance opening tenants, and the online backup copying each tenant
    leasing = {"access.py", "changes.py", "imports.py", "maintenance.py", "online_backups.py"}
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "tracker" / "services").rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(bad in line for bad in ("assert access.org", "assert access.project", "project_of("))
        or ("tenants.lease(" in line and path.name not in leasing)
    ]
    assert found == []


def test_the_layer_test_covers_the_access_and_binding_modules() -> None:
    names = dict(python_modules())
    for module, layer in (
        ("tracker.services.acting", "tracker.services"),
        ("tracker.services.access", "tracker.services"),
        ("tracker.http.binding", "tracker.http"),
        ("tracker.http.routes", "tracker.http"),
        ("cli.issue_args", "cli"),
    ):
        assert module in names, module
        assert layer_of(module) == next(entry for entry in LAYERS if entry[0] == layer)


def test_handlers_import_the_binding_never_the_route_list() -> None:
    """routes.py joins the handler modules; they (and binding) must not import it back."""
    importers = [("tracker.http.binding", ROOT / "tracker" / "http" / "binding.py")]
    importers += [(n, p) for n, p in python_modules() if n.startswith("tracker.http.handlers")]
    for name, path in importers:
        imports = runtime_imports(ast.parse(path.read_text(encoding="utf-8")))
        assert not any(i.startswith("tracker.http.routes") for i in imports), name
        if name == "tracker.http.binding":
            assert not any(i.startswith("tracker.http.handlers") for i in imports), name


def test_each_handler_declares_the_access_its_scope_guarantees() -> None:
    """`bind` builds UserAccess / OrgAccess / ProjectAccess from the permission's scope;
    the handler's `Call[...]` names the same type, so services get it without asserts."""
    import typing

    from tracker.domain.permissions import Scope, scope_of
    from tracker.services.access import OrgAccess, ProjectAccess, UserAccess

    expected = {
        Scope.PUBLIC: UserAccess,
        Scope.USER: UserAccess,
        Scope.ORG: OrgAccess,
        Scope.PROJECT: ProjectAccess,
    }
    for route in all_routes():
        (declared,) = typing.get_args(typing.get_type_hints(route.handler)["call"])
        assert declared is expected[scope_of(route.permission)], route.name


def test_bind_refuses_a_scoped_route_without_its_path_parameters() -> None:
    from tracker.http.binding import Call, bind

    async def handler(call: Call[Any]) -> Any:
        return None

    for path in ("/orgs/{org}/things", "/things"):
        with pytest.raises(ValueError, match="needs"):
            bind(Route("GET", path, handler, Permission.PROJECT_READ, "x"))
    bind(Route("GET", "/orgs/{org}/projects/{project}/x", handler, Permission.PROJECT_READ, "x"))
