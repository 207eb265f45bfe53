"""The Dockerfile and compose file, checked without a container engine (none runs here).

What a build would catch, checked against the repository instead: every COPY source
exists, is not excluded by .dockerignore and together they hold what the wheel
packs; every RHYTHM_* variable set is a setting; the port, the data volume and
the health-check URL agree across Dockerfile, compose file and README; and the
image's command, run with the image's environment (host and data dir moved to
this test's), starts a server that the image's own health-check command finds
ready. README's "Run in a container" section says so (docs/operations-data.md).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import yaml

from tracker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def env_of(stage_args: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage_args:
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def runtime_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_copied_sources_exist_and_hold_what_the_wheel_packs() -> None:
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied: set[str] = set()
    for word, args in instructions():
        if word != "COPY" or args.startswith("--from"):
            continue
        *sources, _dest = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
            copied.add(source.rstrip("/"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {
        *wheel["packages"],
        *wheel["force-include"],
        "pyproject.toml",
        project["project"]["readme"],
    }
    assert needed <= copied, f"the build stage misses {needed - copied}"
    python = [args for word, args in instructions() if word == "FROM"]
    assert all(image.startswith("python:3.") for image in python), python
    minimum = project["project"]["requires-python"].removeprefix(">=")
    assert all(tuple(map(int, image.split(":")[1].split("-")[0].split("."))) >= tuple(
        map(int, minimum.split("."))) for image in python)  # fmt: skip


def test_environment_port_volume_and_health_agree() -> None:
    stage = runtime_stage()
    env = env_of([args for word, args in stage if word == "ENV"])
    fields = {f"RHYTHM_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, f"not settings: {set(env) - fields}"
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["rhythm"]
    assert set(service.get("environment", {})) <= fields
    port = env["RHYTHM_PORT"]
    (expose,) = [args for word, args in stage if word == "EXPOSE"]
    assert expose == port and service["ports"] == [f"{port}:{port}"]
    (volume,) = [json.loads(args) for word, args in stage if word == "VOLUME"]
    assert volume == [env["RHYTHM_DATA_DIR"]]
    assert any(v.endswith(f":{env['RHYTHM_DATA_DIR']}") for v in service["volumes"])
    health = " ".join(service["healthcheck"]["test"][1:])
    (docker_health,) = [args for word, args in stage if word == "HEALTHCHECK"]
    url = f"http://127.0.0.1:{port}/api/v1/health/ready"
    assert url in health and url in docker_health
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run in a container", 1)[1].split("\n## ", 1)[0]
    assert f"-p {port}:{port}" in section and f":{env['RHYTHM_DATA_DIR']}" in section
    (cmd,) = [json.loads(args) for word, args in stage if word == "CMD"]
    assert " ".join(cmd) in section and "docker compose up -d" in section
    assert ("USER", "rhythm") in stage  # never root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_image_command_starts_a_server_its_health_check_finds_ready(tmp_path: Path) -> None:
    stage = runtime_stage()
    env = env_of([args for word, args in stage if word == "ENV"])
    (cmd,) = [json.loads(args) for word, args in stage if word == "CMD"]
    (health,) = [args for word, args in stage if word == "HEALTHCHECK"]
    probe = shlex.split(health.split(" CMD ", 1)[1])
    port = str(free_port())
    env.update(RHYTHM_HOST="127.0.0.1", RHYTHM_PORT=port, RHYTHM_DATA_DIR=str(tmp_path / "data"))
    program = Path(sys.executable).with_name(cmd[0])  # the console script pip installed
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(program), *cmd[1:]], env={**os.environ, **env}, cwd=tmp_path,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        probe = [sys.executable if probe[0] == "python" else probe[0], *probe[1:]]
        probe = [p.replace(f":{8080}/", f":{port}/") for p in probe]
        deadline = time.monotonic() + 30
        while True:
            if subprocess.run(probe, capture_output=True).returncode == 0:
                break
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the health check never passed"
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0  # SIGTERM (the image's STOPSIGNAL) is a clean stop
