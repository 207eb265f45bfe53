"""OpenAPI 3.1, generated from the route table and the pydantic models.

Statuses are derived from what the wrapper in binding.py can raise for a route
(401 when authenticated, 403/404 when scoped to an org or project, 400/413/415/
422 when it takes a body...), plus the route's own `errors`, so the contract
fuzzer finds no undocumented status.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from tracker import __version__
from tracker.domain.bounds import MAX_ISSUE_NUMBER
from tracker.domain.permissions import Scope, scope_of
from tracker.http.binding import Route
from tracker.http.problems import PROBLEM_TYPE, problem_schema

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)}")

PARAM_DOCS = {
    "org": "Organization slug",
    "project": "Project key (case-insensitive)",
    "n": "Issue number",
    "key": "Issue key such as WEB-42",
}
# Examples let the contract fuzzer reach real handlers (the test seeds acme/WEB/WEB-1).
PARAM_EXAMPLES: dict[str, Any] = {"org": "acme", "project": "WEB", "n": 1, "key": "WEB-1"}


def error_statuses(route: Route) -> set[int]:
    scope = scope_of(route.permission)
    statuses = {400, 404, 503} | set(route.errors)  # 404: unknown routes; 503: overload
    statuses |= {414, 431}  # any request: URL or headers over aiohttp's 8,190-byte limits
    if not route.path.startswith("/health/"):
        statuses.add(429)  # the rate limiter (tracker/http/ratelimit.py); health is exempt
    if route.method != "GET":
        statuses.add(507)  # the disk is full (503 covers a read-only one)
    if scope is not Scope.PUBLIC:
        statuses.add(401)
    if scope in (Scope.ORG, Scope.PROJECT):
        statuses |= {403, 404}
    if route.body is not None:
        statuses |= {400, 413, 415, 422}
    if route.raw_body is not None:
        statuses |= {413, 422}
    if route.upload is not None:
        statuses |= {413, 415, 422, 507}
    if route.query is not None:
        statuses.add(422)
    return statuses


def build_openapi(routes: list[Route]) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": problem_schema()}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation = _operation(route, schemas)
        paths.setdefault(route.full_path, {})[route.method.lower()] = operation
    return _safe_schema_names(
        {
            "openapi": "3.1.0",
            "info": {"title": "Rhythm API", "version": __version__},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
            },
        }
    )


def _safe_name(name: str) -> str:
    """OpenAPI component names allow only [a-zA-Z0-9._-]; generics are named `Page[Org]`."""
    return re.sub(r"[^a-zA-Z0-9._-]", "_", name).strip("_")


def _safe_schema_names(document: dict[str, Any]) -> dict[str, Any]:
    prefix = REF.format(model="")
    schemas = document["components"]["schemas"]
    document["components"]["schemas"] = {_safe_name(k): v for k, v in schemas.items()}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: prefix + _safe_name(value[len(prefix) :])
                if key == "$ref" and isinstance(value, str) and value.startswith(prefix)
                else fix(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    return fix(document)


def _schema_ref(
    model: type[BaseModel], schemas: dict[str, Any], mode: JsonSchemaMode
) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, mode=mode)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    name = model.__name__
    schemas.setdefault(name, schema)
    return {"$ref": REF.format(model=name)}


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{route.name}",
        "summary": route.summary,
        "tags": [route.tag],
        "x-permission": str(route.permission),
        "parameters": _parameters(route, schemas),
        "responses": _responses(route, schemas),
    }
    if scope_of(route.permission) is not Scope.PUBLIC:
        operation["security"] = [{"bearer": []}]
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": _schema_ref(route.body, schemas, "validation")}
            },
        }
    if route.raw_body is not None:
        media_type, line = route.raw_body
        lines = {"type": "array", "items": _schema_ref(line, schemas, "validation")}
        operation["requestBody"] = {
            "required": True,
            "description": "One JSON object per line (each line as `items` describes).",
            "content": {media_type: {"schema": lines}},
        }
    if route.upload is not None:
        files = {"type": "array", "items": {"type": "string", "format": "binary"}}
        operation["requestBody"] = {
            "required": True,
            "description": f"One or more files, each a `{route.upload}` part.",
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {route.upload: files},
                        "required": [route.upload],
                    }
                }
            },
        }
    return operation


def _parameters(route: Route, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in _PARAM.findall(route.path):
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 1, "maximum": MAX_ISSUE_NUMBER}
            if name == "n"
            else {"type": "string"}
        )
        param = {"name": name, "in": "path", "required": True, "schema": schema,
                 "description": PARAM_DOCS.get(name, name)}  # fmt: skip
        if name in PARAM_EXAMPLES:
            param["example"] = PARAM_EXAMPLES[name]
        params.append(param)
    if route.query is not None:
        query_schema = route.query.model_json_schema(ref_template=REF)
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    return params


def _responses(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    success: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        success["content"] = {
            "application/json": {"schema": _schema_ref(route.response, schemas, "serialization")}
        }
    if route.produces is not None:
        success["content"] = {route.produces: {"schema": {"type": "string", "format": "binary"}}}
    responses[str(route.status)] = success
    for status, model in route.extra.get("other_success", {}).items():  # e.g. 200 with ?wait
        responses[str(status)] = {
            "description": "Success",
            "content": {
                "application/json": {"schema": _schema_ref(model, schemas, "serialization")}
            },
        }
    problem = {PROBLEM_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}}
    for status in sorted(error_statuses(route)):
        responses[str(status)] = {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": problem,
        }
    return responses


_DESCRIPTIONS = {
    400: "Malformed request", 401: "Not authenticated", 403: "Not allowed",
    404: "Not found (or not visible to the caller)", 409: "Conflict", 412: "Stale If-Match",
    413: "Body too large", 414: "URL too long", 415: "Unsupported media type",
    422: "Validation failed", 429: "Throttled", 431: "Headers too large",
    503: "Overloaded or unavailable", 507: "Insufficient storage (disk full or quota)",
}  # fmt: skip
