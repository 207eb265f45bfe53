"""Accounts over HTTP: the token life cycle and every way a token can be wrong."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest

from tests.conftest import Api, make_settings
from tracker.http.app import create_app

ME = "/api/v1/users/me"


async def test_register_login_me_refresh_reuse_logout(api: Api, client: Any) -> None:
    user = await api.user("ann@example.com")
    helper_keys = {"headers", "tokens", "password"}
    assert set(user) - helper_keys == {"id", "email", "display_name", "created_at"}
    response = await client.get(ME, headers=user["headers"])
    assert response.status == 200
    assert (await response.json())["email"] == "ann@example.com"

    first = user["tokens"]["refresh_token"]
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert response.status == 200
    second = (await response.json())["refresh_token"]
    assert second != first

    # The rotated token is refused, and presenting it revokes the whole family.
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert response.status == 401
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": second})
    assert response.status == 401

    login = await client.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": user["password"]}
    )
    third = (await login.json())["refresh_token"]
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": third})).status == 204
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": third})
    assert response.status == 401


async def test_parallel_refresh_exactly_one_wins(api: Api, client: Any) -> None:
    user = await api.user()
    token = user["tokens"]["refresh_token"]
    responses = await asyncio.gather(
        *(client.post("/api/v1/auth/refresh", json={"refresh_token": token}) for _ in range(2))
    )
    assert sorted(r.status for r in responses) == [200, 401]


async def test_refresh_tokens_and_passwords_are_hashed_at_rest(api: Api, client: Any) -> None:
    user = await api.user(password="very secret words")
    from tracker.http.keys import CORE

    db_file = client.app[CORE].settings.system_db_path
    raw = db_file.read_bytes() + db_file.with_name("_system.db-wal").read_bytes()
    assert user["tokens"]["refresh_token"].encode() not in raw
    assert b"very secret words" not in raw


async def test_duplicate_email_is_case_insensitive_and_not_an_oracle(api: Api, client: Any) -> None:
    """A taken email (any case) answers like a free one and changes nothing (issue 12)."""
    bob = await api.user("Bob@Example.com")
    response = await client.post(
        "/api/v1/auth/register", json={"email": "bob@example.COM", "password": "whatever12"}
    )
    assert response.status == 201
    assert set(await response.json()) == {"id", "email", "display_name", "created_at"}
    assert (await response.json())["id"] != bob["id"]
    login = {"email": "bob@example.com", "password": "whatever12"}
    assert (await client.post("/api/v1/auth/login", json=login)).status == 401
    login["password"] = bob["password"]
    assert (await client.post("/api/v1/auth/login", json=login)).status == 200


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": user_id, "iat": now, "exp": now + 600, "iss": "rhythm", "aud": "rhythm-api",
        "jti": "x", "tv": 1, "typ": "access",
    }  # fmt: skip
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _secret(client: Any) -> str:
    from tracker.http.keys import CORE

    return client.app[CORE].tokens._secret  # the server's real signing secret


@pytest.mark.parametrize(
    "label",
    ["tampered", "expired", "alg_none", "wrong_audience", "wrong_issuer", "hs512", "no_exp",
     "other_secret", "garbage"],
)  # fmt: skip
async def test_bad_access_tokens_are_401(api: Api, client: Any, label: str) -> None:
    user = await api.user()
    secret = _secret(client)
    good = user["tokens"]["access_token"]
    tokens = {
        "tampered": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"),
        "expired": jwt.encode(_claims(user["id"], exp=int(time.time()) - 120), secret),
        "alg_none": jwt.encode(_claims(user["id"]), key=None, algorithm="none"),
        "wrong_audience": jwt.encode(_claims(user["id"], aud="someone-else"), secret),
        "wrong_issuer": jwt.encode(_claims(user["id"], iss="evil"), secret),
        "hs512": jwt.encode(_claims(user["id"]), secret, algorithm="HS512"),
        "no_exp": jwt.encode(_claims(user["id"], exp=None), secret),
        "other_secret": jwt.encode(_claims(user["id"]), "x" * 64),
        "garbage": "not-a-token",
    }
    response = await client.get(ME, headers={"Authorization": f"Bearer {tokens[label]}"})
    assert response.status == 401
    body = await response.json()
    assert body["status"] == 401 and body["request_id"]
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "Token x y"])
async def test_missing_or_garbled_authorization_is_401(client: Any, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.get(ME, headers=headers)
    assert response.status == 401
    assert (await response.json())["request_id"] == response.headers["X-Request-Id"]


async def test_a_refresh_token_is_not_a_bearer_token(api: Api, client: Any) -> None:
    user = await api.user()
    bearer = {"Authorization": f"Bearer {user['tokens']['refresh_token']}"}
    assert (await client.get(ME, headers=bearer)).status == 401


async def test_password_change_logs_out_everywhere(api: Api, client: Any) -> None:
    user = await api.user(password="first password")
    response = await client.patch(
        ME,
        headers=user["headers"],
        json={"password": "second password", "current_password": "first password"},
    )
    assert response.status == 200
    assert (await client.get(ME, headers=user["headers"])).status == 401
    refresh = {"refresh_token": user["tokens"]["refresh_token"]}
    assert (await client.post("/api/v1/auth/refresh", json=refresh)).status == 401
    login = {"email": user["email"], "password": "second password"}
    assert (await client.post("/api/v1/auth/login", json=login)).status == 200


async def test_password_change_needs_the_current_password(api: Api, client: Any) -> None:
    user = await api.user(password="first password")
    response = await client.patch(
        ME, headers=user["headers"], json={"password": "x" * 12, "current_password": "wrong!!"}
    )
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "current_password"


async def test_failed_logins_are_throttled_per_email(api: Api, client: Any) -> None:
    user = await api.user()
    wrong = {"email": user["email"], "password": "wrong password"}
    statuses = [(await client.post("/api/v1/auth/login", json=wrong)).status for _ in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    right = {"email": user["email"], "password": user["password"]}
    response = await client.post("/api/v1/auth/login", json=right)
    assert response.status == 429  # still throttled until the window passes
    assert int(response.headers["Retry-After"]) >= 1


async def test_unknown_email_and_wrong_password_look_the_same(api: Api, client: Any) -> None:
    user = await api.user()
    a = await client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": "nope nope"}
    )
    b = await client.post(
        "/api/v1/auth/login", json={"email": "ghost@example.com", "password": "nope nope"}
    )
    body_a, body_b = await a.json(), await b.json()
    assert a.status == b.status == 401
    assert body_a["detail"] == body_b["detail"]


async def test_login_is_throttled_per_address(aiohttp_client: Any, tmp_path: Any) -> None:
    settings = make_settings(tmp_path / "d", login_attempts_per_address=3)
    client = await aiohttp_client(create_app(settings))
    body = {"email": "a@example.com", "password": "whatever1"}
    statuses = []
    for i in range(4):
        body["email"] = f"user{i}@example.com"
        statuses.append((await client.post("/api/v1/auth/login", json=body)).status)
    assert statuses == [401, 401, 401, 429]


async def test_per_request_auth_never_hashes(api: Api, client: Any) -> None:
    """An authenticated read must cost far less than one argon2 hash (~10+ ms here)."""
    from tracker.http.keys import CORE
    from tracker.services.accounts import authenticate

    user = await api.user()
    core = client.app[CORE]
    token = user["tokens"]["access_token"]
    await authenticate(core, token)
    started = time.perf_counter()
    for _ in range(200):
        await authenticate(core, token)
    per_call = (time.perf_counter() - started) / 200
    assert per_call < 0.0005, per_call


async def test_an_access_token_sent_to_refresh_is_401(api: Api, client: Any) -> None:
    """Checklist: an access token (a JWT, longer than a refresh token) at /auth/refresh is
    a bad refresh token like any other: 401, not a 422 about its length."""
    user = await api.user()
    access = user["tokens"]["access_token"]
    for token in (access, "x" * 2000):
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
        assert response.status == 401, await response.text()
        assert response.content_type == "application/problem+json"
    # ...and the user's real refresh token still works (nothing was revoked).
    real = {"refresh_token": user["tokens"]["refresh_token"]}
    assert (await client.post("/api/v1/auth/refresh", json=real)).status == 200
