"""Meta tests that keep the house in shape: import layers, the route table, the docs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tracker.domain.permissions import RULES, Permission
from tracker.http.openapi import build_openapi
from tracker.http.routes import API_PREFIX, Route, all_routes
from tracker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# STYLE.md "What may import what", top to bottom. A module may import its own
# layer and any layer below; siblings that share a rank may not import each other.
LAYERS: list[tuple[str, int]] = [
    ("cli", 7),
    ("tracker.http", 6),
    ("tracker.core", 5),
    ("tracker.services", 4),
    ("tracker.storage", 3),
    ("tracker.auth", 3),
    ("tracker.scripting", 3),
    ("tracker.sync", 3),
    ("tracker.outbound", 3),
    ("tracker.domain", 2),
    ("tracker.settings", 1),
    ("tracker.errors", 1),
    ("tracker", 0),  # tracker/__init__.py (version only)
]
# The doors never touch SQL directly.
FORBIDDEN = {"cli": ("tracker.storage",), "tracker.http": ("tracker.storage",)}
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
    from tracker.http.ws import SOCKET_ROUTES

    app = create_app(Settings(data_dir=tmp_path))
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    table = {(r.method, r.full_path) for r in all_routes()}
    sockets = {("GET", r.full_path) for r in SOCKET_ROUTES}
    assert served == table | sockets
    assert not table & sockets
    for route in SOCKET_ROUTES:
        assert route.permission in RULES, route.path
    assert not {r.full_path for r in SOCKET_ROUTES} & set(build_openapi(all_routes())["paths"])
