"""Logs: JSON lines with the request fields, the slow-request log, the slow-query log."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Api, make_settings
from tests.test_contract import ROOT, free_port
from tracker.http.app import create_app
from tracker.logs import JsonFormatter
from tracker.storage import slowlog


def test_json_formatter_writes_one_object_with_the_record_fields() -> None:
    record = logging.LogRecord("tracker.x", logging.WARNING, __file__, 1, "a %s line", ("fine",),
                               None)  # fmt: skip
    record.fields = {"status": 200, "route": "/api/v1/orgs/{org}", "msg": "not over msg"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "a fine line" and entry["level"] == "warning"
    assert entry["logger"] == "tracker.x" and entry["ts"].endswith("+00:00")
    assert entry["status"] == 200 and entry["route"] == "/api/v1/orgs/{org}"


async def test_rhythm_serve_writes_json_lines_with_the_request_fields(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ, "RHYTHM_LOG_LEVEL": "info", "RHYTHM_LOG_FORMAT": "json",
        "RHYTHM_ARGON2_TIME_COST": "1", "RHYTHM_ARGON2_MEMORY_KIB": "8192",
    }  # fmt: skip
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(tmp_path / "data"),
             "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(150):
                    try:
                        async with http.get(base + "/health/live") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
                account = {"email": "logs@example.com", "password": "correct horse"}
                user = await (await http.post(base + "/auth/register", json=account)).json()
                tokens = await (await http.post(base + "/auth/login", json=account)).json()
                headers = {"Authorization": f"Bearer {tokens['access_token']}"}
                org = await (await http.post(base + "/orgs", json={"name": "Logs"},
                                             headers=headers)).json()  # fmt: skip
                async with http.get(f"{base}/orgs/{org['slug']}", headers=headers) as response:
                    assert response.status == 200
                    request_id = response.headers["X-Request-Id"]
        finally:
            process.terminate()
            await asyncio.to_thread(process.wait, 20)
    lines = log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    access = [e for e in entries if e.get("request_id") == request_id]
    assert len(access) == 1, entries
    line = access[0]
    assert line["logger"] == "aiohttp.access" and line["level"] == "info"
    assert line["user"] == user["id"] and line["org"] == org["slug"]
    assert line["route"] == "/api/v1/orgs/{org}" and line["path"] == f"/api/v1/orgs/{org['slug']}"
    assert line["status"] == 200 and line["method"] == "GET"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["remote"] == "127.0.0.1"
    anonymous = [e for e in entries if e.get("route") == "/api/v1/health/live"]
    assert anonymous and anonymous[0]["user"] is None
    setup = [e for e in entries if e["logger"] == "tracker.storage.sqlite_setup"]
    assert [e["msg"] for e in setup] == [  # before the first database opened
        "SQLite memory statistics off (RHYTHM_SQLITE_MEMORY_STATISTICS=true keeps them)"
    ]


async def test_slow_requests_are_logged_with_their_fields(
    tmp_path: Path, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path / "d", slow_request_ms=1)))
    api = Api(client)
    owner = await api.user()  # argon2 runs: well over a millisecond
    with caplog.at_level(logging.WARNING, logger="tracker.slow_request"):
        org = await api.org(owner)
    slow = [r for r in caplog.records if r.name == "tracker.slow_request"]
    assert slow, "creating an org took under 1 ms?"
    fields = slow[-1].fields  # type: ignore[attr-defined]
    assert fields["route"] == "/api/v1/orgs" and fields["status"] == 201
    assert fields["user"] == owner["id"] and fields["duration_ms"] >= 1
    assert fields["request_id"]
    assert org["slug"]


async def test_fast_requests_are_not_logged_as_slow(
    tmp_path: Path, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path / "d")))  # 1000 ms
    with caplog.at_level(logging.WARNING, logger="tracker.slow_request"):
        assert (await client.get("/api/v1/health/live")).status == 200
    assert not [r for r in caplog.records if r.name == "tracker.slow_request"]


async def test_slow_queries_are_logged_with_their_plan(
    core_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    core = await core_factory(slow_query_ms=0.001)  # every statement is "slow"

    def lookup(conn: Any) -> Any:
        conn.execute("CREATE TEMP TABLE t(k TEXT PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO t VALUES ('secret@example.com', 'x')")
        return [tuple(r) for r in conn.execute("SELECT v FROM t WHERE k = 'secret@example.com'")]

    with caplog.at_level(logging.WARNING, logger="tracker.slow_query"):
        assert await core.system.read(lookup) == [("x",)]
    records = [r for r in caplog.records if r.name == "tracker.slow_query"]
    select = [r.fields for r in records if r.fields["sql"].startswith("SELECT v FROM t")]  # type: ignore[attr-defined]
    assert select, [r.getMessage() for r in records]
    fields = select[0]
    assert fields["sql"] == "SELECT v FROM t WHERE k = ?"  # the value is masked in the log
    assert fields["db"] == "system" and fields["duration_ms"] > 0
    assert any("USING INDEX" in line for line in fields["plan"]), fields["plan"]
    assert not any("secret@example.com" in r.getMessage() for r in records)


async def test_the_slow_query_log_is_off_by_default_and_costs_nothing(core_factory: Any) -> None:
    core = await core_factory()
    assert slowlog.tracer("x") is None
    assert core.system._tracer is None  # no trace callback installed, no job wrapper


def test_masking_keeps_numbers_and_hides_strings_and_blobs() -> None:
    sql = "UPDATE u SET name = 'O''Brien', key = X'00ff' WHERE id = 42"
    assert slowlog.mask(sql) == "UPDATE u SET name = ?, key = ? WHERE id = 42"


async def test_slow_writes_are_logged_through_the_group_commit_path(
    core_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    core = await core_factory(slow_query_ms=0.001)
    await core.system.read(lambda conn: conn.execute("CREATE TEMP TABLE w(v TEXT)"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tracker.slow_query"):
        await core.system.write(lambda conn: conn.execute("INSERT INTO w VALUES ('hidden')"))
        # the write's caller resumes at COMMIT; its job logs a moment later, on the thread:
        # the next job on that one thread starts only after it
        await core.system.read(lambda conn: None)
    logged = {r.fields["sql"]: r.fields for r in caplog.records if r.name == "tracker.slow_query"}  # type: ignore[attr-defined]
    assert "INSERT INTO w VALUES (?)" in logged, list(logged)
    assert logged["COMMIT"]["plan"] == []  # the group's own COMMIT (fsync) is timed too
    assert not any("hidden" in r.getMessage() for r in caplog.records)
