"""Contract test: the real server, fuzzed by schemathesis against its own OpenAPI.

Fails on any 5xx, an undocumented status code, or a body that does not match
the documented schema. Every route added to the route table is covered
automatically. Bounded: a few examples per operation, fixed seed.

Every integer a request carries has a minimum and a maximum in the OpenAPI
(tests/test_http_bounds.py enforces it), so the coverage phase, which runs in
schemathesis' default `--mode all`, also sends the values just past them and
expects a documented 4xx rather than a 500.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_PER_OPERATION = os.environ.get("RHYTHM_CONTRACT_EXAMPLES", "8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    request = urllib.request.Request(base + path, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(request, data=data, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The real server in its own process; its log lands in tmp_path/server.log."""
    port = free_port()
    log_file = (tmp_path / "server.log").open("wb")
    env = {
        **os.environ,
        "RHYTHM_LOG_LEVEL": "warning",
        "RHYTHM_ARGON2_TIME_COST": "1",
        "RHYTHM_ARGON2_MEMORY_KIB": "8192",
        "RHYTHM_LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
        "RHYTHM_SIGNUPS_PER_ADDRESS": "0",
        "RHYTHM_MAX_ORGS_PER_USER": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(tmp_path / "data"),
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                call(base, "GET", "/api/v1/health/live")
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()
        assert process.returncode == 0, (tmp_path / "server.log").read_text()[-3000:]


def seed_world(base: str) -> str:
    """A user with an org, a project and an issue, so fuzzed requests reach real handlers."""
    call(
        base,
        "POST",
        "/api/v1/auth/register",
        {"email": "fuzz@example.com", "password": "fuzz-pass-1"},
    )
    tokens = call(
        base, "POST", "/api/v1/auth/login", {"email": "fuzz@example.com", "password": "fuzz-pass-1"}
    )
    token = tokens["access_token"]
    call(base, "POST", "/api/v1/orgs", {"name": "Acme", "slug": "acme"}, token)
    call(base, "POST", "/api/v1/orgs/acme/projects", {"name": "Web", "key": "WEB"}, token)
    call(base, "POST", "/api/v1/orgs/acme/projects/WEB/issues", {"title": "First"}, token)
    return token


# ~125 operations (the sync routes added 7) take 70-90 s on a quiet box and more under
# load: the subprocess's own 900 s limit is the one that matters, not the suite's 120 s.
@pytest.mark.timeout(900)
def test_schemathesis_finds_no_server_errors_or_contract_violations(
    server: str, tmp_path: Path
) -> None:
    token = seed_world(server)
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server}/api/v1/docs/openapi.json",
        "--url", server,
        "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
        "--max-examples", EXAMPLES_PER_OPERATION,
        "--phases", "examples,coverage,fuzzing",
        "--seed", "1",
        "--generation-deterministic",
        "--exclude-path", "/api/v1/users/me",  # a fuzzed password change would log the token out
        "--header", f"Authorization: Bearer {token}",
        "--workers", "1",
        "--no-color",
    ]  # fmt: skip
    hooks = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.contract_hooks"}  # JSON Lines bodies
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=900, cwd=ROOT, env=hooks
    )
    output = result.stdout + result.stderr
    server_log = (tmp_path / "server.log").read_text()[-4000:]
    assert result.returncode == 0, output[-6000:] + "\n--- server log ---\n" + server_log
