"""Out-of-range numbers and dates are a 4xx naming the field, never a 500.

Structural, from the route table: (1) every integer any request may carry (body,
JSON Lines body, query string, path) has a minimum and a maximum in the OpenAPI,
so schemathesis' coverage phase also sends the values just past them; (2) every
date field is marked with a `format`, so (3) a hypothesis test can send values
out of range to every route that takes an integer or a date and insist on a
400/422 that names the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tests.test_http_search_fuzz import LoopThread
from tracker.domain.bounds import MAX_ISSUE_NUMBER, MIN_YEAR
from tracker.http.app import create_app
from tracker.http.binding import API_PREFIX, Route
from tracker.http.openapi import build_openapi
from tracker.http.routes import all_routes

DATE_FORMATS = ("date", "date-time")


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def walk(
    document: dict[str, Any], node: Any, path: str, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node reachable from `node`, with a dotted path (refs followed once)."""
    if isinstance(node, dict):
        if "$ref" in node:
            if node["$ref"] in seen:
                return
            seen = seen | {node["$ref"]}
            node = resolve(document, node)
        yield path, node
        for key, value in node.get("properties", {}).items():
            yield from walk(document, value, f"{path}.{key}", seen)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from walk(document, node[key], f"{path}[]", seen)
        for key in ("anyOf", "oneOf", "allOf"):
            for item in node.get(key, []):
                yield from walk(document, item, path, seen)


def request_schemas(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(operation, location, schema) of every request part of every operation."""
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            name = f"{method.upper()} {path}"
            for param in operation.get("parameters", []):
                yield name, f"{param['in']}:{param['name']}", param["schema"]
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                yield name, f"body({media})", content["schema"]


def test_every_integer_a_request_carries_is_bounded() -> None:
    document = build_openapi(all_routes())
    unbounded = []
    for operation, location, schema in request_schemas(document):
        for path, node in walk(document, schema, location, set()):
            if node.get("type") in ("integer", "number"):
                low = "minimum" in node or "exclusiveMinimum" in node
                high = "maximum" in node or "exclusiveMaximum" in node
                if not (low and high):
                    unbounded.append(f"{operation} {path}")
    assert not unbounded, "integers without minimum/maximum:\n" + "\n".join(sorted(set(unbounded)))


# --- every route that takes an integer or a date, sent values out of range ----------------

#: A body each model accepts (validation-wise), to which one out-of-range value is added.
#: A model with required fields and an integer or date field must be listed here.
BASE_BODIES: dict[str, dict[str, Any]] = {
    "IssueCreate": {"title": "t"},
    "RelationIn": {"type": "relates_to", "issue": 2},
    "TimeEntryIn": {"seconds_spent": 60},
    "StageIn": {"name": "Stage", "category": "todo"},
    "SprintIn": {"name": "Sprint"},
    "BacklogMove": {"issue": 1, "after": 2},
    "CustomFieldIn": {"name": "Field", "type": "text"},
    "ImportedIssue": {"title": "t"},
    # bodies of routes under .../issues/{n}, whose {n} is sent out of range
    "CommentIn": {"body": "x"},
    "CommentPatch": {"body": "x"},
    "IssueTagsIn": {"tags": []},
    "AssigneesIn": {"user_ids": []},
    # sync (docs/sync.md)
    "ClientIn": {"scope": ["*"]},
    "PushIn": {"client_id": "00000000-0000-7000-8000-000000000000", "mutations": []},
}
FAKE_ID = "00000000-0000-7000-8000-000000000000"
#: 2**63 and its neighbours do not fit SQLite's int64; 2**80 does not fit anything.
HUGE = [2**53, 2**63 - 1, 2**63, -(2**63) - 1, 2**80, -(2**80), 10**30]


@dataclass(frozen=True)
class Case:
    route: Route
    location: str  # "body", "query", "path" or "lines" (a JSON Lines body)
    field: str
    kind: str  # "int" or "date"/"date-time"
    low: int | None = None
    high: int | None = None

    def __str__(self) -> str:
        return f"{self.route.method} {self.route.path} {self.location}:{self.field}"


def _kind(prop: dict[str, Any]) -> tuple[str, int | None, int | None] | None:
    """("int", min, max) or (date format, None, None) for a property, else None."""
    for option in [prop, *prop.get("anyOf", [])]:
        if option.get("type") == "integer":
            low = option.get("minimum", option.get("exclusiveMinimum", 0) + 1)
            high = option.get("maximum", option.get("exclusiveMaximum", 0) - 1)
            return "int", low, high
    for option in [prop, *prop.get("anyOf", [])]:
        if option.get("format") in DATE_FORMATS:
            return option["format"], None, None
    return None


def cases() -> list[Case]:
    """Every (route, integer or date field) of the route table."""
    found = []
    for route in all_routes():
        if "{n}" in route.path:
            found.append(Case(route, "path", "n", "int", 1, MAX_ISSUE_NUMBER))
        models = [("body", route.body), ("query", route.query)]
        models.append(("lines", route.raw_body[1] if route.raw_body else None))
        for location, model in models:
            if model is None:
                continue
            schema = model.model_json_schema()
            for name, prop in schema.get("properties", {}).items():
                kind = _kind(prop)
                if kind is not None:
                    found.append(Case(route, location, name, *kind))
    return found


def out_of_range(case: Case) -> st.SearchStrategy[Any]:
    if case.kind == "int":
        assert case.low is not None and case.high is not None, case
        low, high = case.low, case.high
        return st.one_of(
            st.sampled_from([v for v in HUGE if not low <= v <= high] + [low - 1, high + 1]),
            st.integers(max_value=low - 1),
            st.integers(min_value=high + 1),
        )
    years = st.one_of(st.integers(1, MIN_YEAR - 1), st.just(9999))
    day = st.builds(lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}", years, st.integers(1, 12),
                    st.integers(1, 28))  # fmt: skip
    if case.kind == "date":
        return st.one_of(day, st.sampled_from(["0000-01-01", "10000-01-01", "9999-12-31"]))
    offsets = st.sampled_from(["Z", "+14:00", "-14:00", "+00:00", ""])
    moment = st.builds(lambda d, o: f"{d}T23:59:59{o}", day, offsets)
    edges = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z"]
    return st.one_of(moment, st.sampled_from(edges))


def url_of(world: World, case: Case, n: Any = 1) -> str:
    params = {"org": world.org["slug"], "project": "WEB", "n": str(n), "key": "WEB-1"}
    path = re.sub(r"{(\w+)}", lambda m: params.get(m.group(1), FAKE_ID), case.route.path)
    return API_PREFIX + path


async def send(world: World, case: Case, value: Any = None, *, bad: bool = True) -> tuple[int, Any]:
    """The request of `case` with `value` in its field (or the base request when not `bad`)."""
    route, kwargs = case.route, {}
    base = dict(BASE_BODIES.get((route.body or route.raw_body[1]).__name__, {})) if (
        route.body or route.raw_body) else {}  # fmt: skip
    if bad and case.location in ("body", "lines"):
        base[case.field] = value
    if bad and case.location == "query":
        kwargs["params"] = {case.field: str(value)}
    if route.raw_body is not None:
        kwargs["data"] = json.dumps(base).encode() + b"\n"
        kwargs["headers"] = {"Content-Type": route.raw_body[0]}
    elif route.body is not None:
        kwargs["json"] = base
    url = url_of(world, case, value if bad and case.location == "path" else 1)
    headers = {**world.owner["headers"], **kwargs.pop("headers", {})}
    response = await world.client.request(route.method, url, headers=headers, **kwargs)
    text = await response.text()
    is_json = response.content_type.endswith("json")  # some routes answer Markdown or bytes
    return response.status, (json.loads(text) if text and is_json else text)


def test_route_table_cases_are_known() -> None:
    """Every model with an integer or date field (or under an issue's URL) has a base body,
    or needs none."""
    for case in cases():
        model = case.route.body or (case.route.raw_body[1] if case.route.raw_body else None)
        if model is not None:
            required = model.model_json_schema().get("required", [])
            assert not required or model.__name__ in BASE_BODIES, (str(case), required)
    names = {f"{c.route.name}:{c.field}" for c in cases()}
    assert {"post__orgs_org_projects_project_issues:parent",
            "patch__orgs_org_projects_project_issues_n:before",
            "post__orgs_org_projects_project_backlog_move:after",
            "post__orgs_org_projects_project_sprints:starts_at",
            "post__orgs_org_projects_project_issues_n_time_entries:logged_at",
            "post__orgs_org_projects_project_issues_import:created_at"} <= names  # fmt: skip


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LoopThread, World]]:
    runner = LoopThread()

    async def start() -> tuple[TestClient, World]:
        client = TestClient(TestServer(create_app(make_settings(tmp_path / "data"))))
        await client.start_server()
        world = await make_world(Api(client), client)
        await world.create(title="One")
        await world.create(title="Two")
        return client, world

    client, world = runner.run(start())
    try:
        yield runner, world
    finally:
        runner.run(client.close())
        runner.stop()


def test_out_of_range_numbers_and_dates_are_4xx_naming_the_field(
    live: tuple[LoopThread, World],
) -> None:
    runner, world = live
    for case in cases():
        status, body = runner.run(send(world, case, bad=False))
        assert status < 500, (str(case), "base request", status, body)
        named = case.location != "path" and case.field in json.dumps(body)
        assert status not in (400, 422) or not named, (
            str(case), "the base request must be valid in this field", body,
        )  # fmt: skip

        fuzz(runner, world, case)


def fuzz(runner: LoopThread, world: World, case: Case) -> None:
    """A dozen out-of-range values for one field of one route."""

    @settings(max_examples=12, deadline=None, database=None)
    @given(value=out_of_range(case))
    def check(value: Any) -> None:
        status, body = runner.run(send(world, case, value))
        if case.location == "path":  # a number no issue can have names nothing
            assert status == 404, (str(case), value, status, body)
            return
        assert status in (400, 422), (str(case), value, status, body)
        assert case.field in json.dumps(body), (str(case), value, body)

    check()


@pytest.mark.parametrize(
    ("q", "status"),
    [
        ("parent:WEB-99999999999999999999999", 400),  # was a 500 (int64 overflow in SQLite)
        ("parent:99999999999999999999999", 400),
        ("parent:WEB-9999999999999999", 400),  # 16 digits
        ("parent:WEB-999999999999999", 200),  # 15 digits: a number no issue has yet
    ],
)
async def test_query_language_issue_numbers_are_bounded(
    api: Api, client: Any, q: str, status: int
) -> None:
    world = await make_world(api, client)
    org_search = f"{API_PREFIX}/orgs/{world.org['slug']}/issues"
    for url in (world.url("/issues"), org_search, world.url("/board")):
        got, body = await world.call("GET", url, params={"q": q})
        assert got == status, (url, body)


async def test_custom_number_values_are_bounded(api: Api, client: Any) -> None:
    world = await make_world(api, client)
    status, body = await world.call(
        "POST", world.url("/fields"), json={"name": "Points", "type": "number"}
    )
    assert status == 201, body
    for value in (2**53, -(2**53), 2**63, 1e300):
        status, body = await world.call(
            "POST", world.url("/issues"), json={"title": "t", "custom_fields": {"Points": value}}
        )
        assert status == 422 and body["errors"][0]["field"] == "custom_fields.Points", body
    ok = {"title": "t", "custom_fields": {"Points": 2**53 - 1}}
    assert (await world.call("POST", world.url("/issues"), json=ok))[0] == 201
