"""Start and stop the server processes under test (Rhythm and baselines)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

import aiohttp

from bench.baselines import READY_PATH

ROOT = Path(__file__).resolve().parent.parent
RHYTHM_FILES = ("cli/main.py", "tracker/http/app.py")
RHYTHM_READY = "/api/v1/health/live"
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """A server process did not become ready."""


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rhythm_missing() -> str | None:
    """Why Rhythm cannot be started from this tree, or None if it can be tried."""
    missing = [f for f in RHYTHM_FILES if not (ROOT / f).exists()]
    return f"not startable yet: missing {', '.join(missing)}" if missing else None


class Server:
    """One server subprocess, ready once ``ready_path`` answers 200."""

    def __init__(
        self,
        label: str,
        argv: list[str],
        ready_path: str,
        port: int,
        log: Path,
        env: dict[str, str] | None = None,
    ):
        self.extra_env = env or {}
        self.ready_timeout = 30.0  # seconds; a data dir with many tenants starts slower
        self.label = label
        self.argv = argv
        self.ready_path = ready_path
        self.port = port
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def __aenter__(self) -> Server:
        env = {**os.environ, "RHYTHM_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1",
               # load generators are not abusers: no sign-up or org-count limits
               "RHYTHM_SIGNUPS_PER_ADDRESS": "0", "RHYTHM_MAX_ORGS_PER_USER": "0",
               "RHYTHM_RATE_LIMIT_RPS": "0", **self.extra_env}  # fmt: skip
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=ROOT, env=env, stdout=out, stderr=out
            )
        try:
            await self._wait_ready(timeout=self.ready_timeout)
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.returncode is not None:
                    raise ServerError(f"{self.label} exited {self.proc.returncode}: {self.tail()}")
                try:
                    async with session.get(self.url + self.ready_path) as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise ServerError(f"{self.label} not ready after {timeout:.0f}s: {self.tail()}")

    async def stop(self) -> None:
        """Terminate the process, killing it if it ignores SIGTERM for 5 s."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 5.0)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def tail(self, lines: int = 15) -> str:
        """The last lines the process wrote, for error messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def baseline_server(name: str, workdir: Path) -> Server:
    """A plain-aiohttp baseline app in its own process."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.baselines", name, "--port", str(port)]
    argv += ["--db", str(workdir / f"baseline-{name}.db")]
    return Server(f"baseline {name}", argv, READY_PATH, port, workdir / f"baseline-{name}.log")


def rhythm_server(
    workdir: Path, env: dict[str, str] | None = None, label: str = "rhythm"
) -> Server:
    """The real Rhythm server (``rhythm serve``) on a fresh data dir; ``env`` adds
    RHYTHM_* settings (e.g. metrics off, for a same-run comparison)."""
    port, data = free_port(), workdir / f"{label}-data"
    data.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data)]
    argv += ["--host", HOST, "--port", str(port)]
    return Server(label, argv, RHYTHM_READY, port, workdir / f"{label}.log", env)
