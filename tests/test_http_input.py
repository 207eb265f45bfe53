"""Bad input gets a clear problem-details 4xx with a request id — never a 500."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tests.conftest import Api
from tracker.errors import ValidationFailed

REGISTER = "/api/v1/auth/register"
JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "invalid JSON"),
        (b"", 400, "empty"),
        (b"[" * 100_000, 400, "nested"),
        (b'{"email": ' + b"9" * 5000 + b"}", 422, "number too large"),
        (b'{"password": "x", "n": [1, ' + b"9" * 31 + b"]}", 422, "n.1"),
        (b'{"email": NaN}', 400, "NaN"),
        (b'{"email": 1e999}', 400, "out of range"),
        (b'{"email": "a@b.co", "email": "c@d.co", "password": "x"}', 400, "duplicate key"),
        (b'{"email": "\\ud800@b.co", "password": "secret123"}', 400, "surrogate"),
        (b"\xff\xfe", 400, "UTF-8"),
        (b"[1, 2]", 422, "JSON object"),
        (b'{"email": 5, "password": true}', 422, "email"),
        (b'{"password": "secret123"}', 422, "email"),
        (b'{"email": "a@b.co", "password": "short"}', 422, "password"),
        (b'{"email": "a@b.co", "password": "secret123", "is_admin": true}', 422, "is_admin"),
        (b'{"email": "not-an-email", "password": "secret123"}', 422, "email"),
    ],
)
async def test_bad_bodies(client: Any, body: bytes, status: int, fragment: str) -> None:
    response = await client.post(REGISTER, data=body, headers=JSON)
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert fragment.lower() in (problem["detail"] + str(problem.get("errors"))).lower()
    assert problem["request_id"] == response.headers["X-Request-Id"]
    assert problem["status"] == status


async def test_validation_reports_every_field_at_once(client: Any) -> None:
    response = await client.post(REGISTER, json={"email": 1, "password": 2, "extra": 3})
    assert response.status == 422
    fields = {error["field"] for error in (await response.json())["errors"]}
    assert {"email", "password", "extra"} <= fields


async def test_two_megabyte_body_is_413(client: Any) -> None:
    body = b'{"email": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    response = await client.post(REGISTER, data=io.BytesIO(body), headers=JSON)
    assert response.status == 413
    assert (await response.json())["request_id"]


async def test_chunked_body_without_length_is_capped(client: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "'
        for _ in range(40):
            yield b"a" * 64 * 1024
        yield b'"}'

    response = await client.post(REGISTER, data=chunks(), headers=JSON)
    assert response.status == 413


async def test_wrong_content_type_is_415(client: Any) -> None:
    response = await client.post(REGISTER, data="email=a", headers={"Content-Type": "text/plain"})
    assert response.status == 415


async def test_unknown_route_and_wrong_method(client: Any) -> None:
    response = await client.get("/api/v1/no/such/route")
    assert response.status == 404
    assert (await response.json())["request_id"]
    response = await client.delete("/api/v1/auth/register")
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    assert response.content_type == "application/problem+json"


async def test_request_id_is_echoed_or_generated(client: Any) -> None:
    response = await client.get("/api/v1/health/live", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    response = await client.get("/api/v1/health/live", headers={"X-Request-Id": "bad id\t<>"})
    generated = response.headers["X-Request-Id"]
    assert generated != "bad id\t<>" and len(generated) >= 20 and generated.isalnum()
    again = await client.get("/api/v1/health/live")
    assert again.headers["X-Request-Id"] != generated  # a fresh id per request


async def test_nothing_is_stored_by_a_rejected_request(api: Api, client: Any) -> None:
    await client.post(REGISTER, json={"email": "x@example.com", "password": "short"})
    response = await client.post(
        "/api/v1/auth/login", json={"email": "x@example.com", "password": "short"}
    )
    assert response.status == 401  # the account was never created


async def test_health_endpoints(client: Any) -> None:
    live = await client.get("/api/v1/health/live")
    assert live.status == 200 and (await live.json())["status"] == "ok"
    ready = await client.get("/api/v1/health/ready")
    body = await ready.json()
    assert ready.status == 200
    assert body["checks"] == {"system_db": "ok", "data_dir": "ok", "disk": "ok"}


def test_from_pydantic_names_every_field_after_the_prefix() -> None:
    """The one converter: dotted locations, a prefix, and a name for whole-value errors."""

    class Inner(BaseModel):
        n: int

    class Outer(BaseModel):
        title: str
        inner: list[Inner]

    with pytest.raises(ValidationError) as caught:
        Outer.model_validate({"inner": [{"n": "x"}]})
    failed = ValidationFailed.from_pydantic(caught.value, prefix="line 3: ")
    assert [e["field"] for e in failed.errors] == ["line 3: title", "line 3: inner.0.n"]
    assert failed.detail.startswith("line 3: title: Field required; line 3: inner.0.n: ")
    with pytest.raises(ValidationError) as caught:
        Inner.model_validate(5)
    assert [e["field"] for e in ValidationFailed.from_pydantic(caught.value).errors] == ["input"]
    whole = ValidationFailed.from_pydantic(caught.value, whole="body")
    assert [e["field"] for e in whole.errors] == ["body"]
