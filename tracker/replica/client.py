"""The sync protocol's HTTP side (docs/sync.md): login, info, clients, snapshot, pull, push.

Access tokens live in memory only; the refresh token is stored (0600) and
rotated on every refresh (the server revokes a family whose old token is
reused, so the new one is written before it is used). A 401 refreshes once and
retries the request: safe for push, which the server answers exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tracker.domain import sync as proto
from tracker.replica.errors import SyncError
from tracker.replica.paths import CREDENTIALS_FILE, server_dir

PROTOCOL, SCHEMA = 1, 1
SYNC_HEADER = f"protocol={PROTOCOL}; schema={SCHEMA}"
API = "/api/v1"
#: 429 answers waited out (each for the server's Retry-After) before giving up: a clone
#: of a big project asks for pages faster than the default rate limit refills.
RATE_LIMIT_WAITS = 120


@dataclass
class Credentials:
    url: str
    email: str
    user_id: str
    refresh_token: str

    @staticmethod
    def path_for(url: str) -> Path:
        return server_dir(url) / CREDENTIALS_FILE

    @classmethod
    def load(cls, url: str) -> Credentials | None:
        try:
            data = json.loads(cls.path_for(url).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(data["url"], data["email"], data["user_id"], data["refresh_token"])

    def save(self) -> None:
        """Written 0600 from the first byte (never readable by others, even briefly)."""
        path = self.path_for(self.url)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.__dict__, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


class SyncClient:
    """One session against one server and org; `async with SyncClient(...) as c:`."""

    def __init__(self, credentials: Credentials, org: str, timeout: float = 60) -> None:
        self.credentials = credentials
        self.org = org
        self.base = credentials.url + API
        self.access: str | None = None
        self.session: aiohttp.ClientSession | None = None
        self.timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout, sock_connect=10)
        self.server_time: str | None = None

    async def __aenter__(self) -> SyncClient:
        self.session = aiohttp.ClientSession(timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    # --- auth -----------------------------------------------------------------------------

    @staticmethod
    async def login(url: str, email: str, password: str) -> Credentials:
        """Trade a password for a refresh token; the password is never stored."""
        async with aiohttp.ClientSession() as session:
            body = {"email": email, "password": password}
            tokens = await _call(session, "POST", f"{url}{API}/auth/login", json=body, what="login")
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            me = await _call(session, "GET", f"{url}{API}/users/me", what="login", headers=bearer)
        return Credentials(url, me.get("email", email), me["id"], tokens["refresh_token"])

    async def refresh(self) -> None:
        assert self.session is not None
        body = await _call(self.session, "POST", f"{self.base}/auth/refresh",
                           json={"refresh_token": self.credentials.refresh_token},
                           what="refresh")  # fmt: skip
        self.credentials.refresh_token = body["refresh_token"]
        self.credentials.save()  # before anything uses the new pair
        self.access = body["access_token"]

    async def request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        """An authenticated sync call; one refresh-and-retry on 401."""
        assert self.session is not None
        if self.access is None:
            await self.refresh()
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.access}", "Rhythm-Sync": SYNC_HEADER}
            try:
                body = await _call(self.session, method, self.base + path, what=what,
                                   headers=headers, **kwargs)  # fmt: skip
            except SyncError as error:
                if error.status == 401 and attempt == 1:
                    await self.refresh()
                    continue
                raise
            if isinstance(body, dict) and body.get("server_time"):
                self.server_time = body["server_time"]
            return body
        raise AssertionError("unreachable")

    # --- endpoints ------------------------------------------------------------------------

    def _org(self, tail: str) -> str:
        return f"/orgs/{self.org}{tail}"

    async def info(self) -> dict[str, Any]:
        return await self.request("GET", self._org("/sync/info"), "sync info")

    async def members(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
            page = await self.request("GET", self._org("/members"), "members", params=params)
            found += page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    async def register(self, scope: list[str], device: str) -> dict[str, Any]:
        body = {"device": device, "scope": scope, "schema": SCHEMA}
        return await self.request("POST", self._org("/sync/clients"), "register", json=body)

    async def snapshot(
        self, client_id: str, project: str | None = None, limit: int = proto.SNAPSHOT_MAX_ITEMS
    ) -> AsyncIterator[dict[str, Any]]:
        """Every line of every snapshot page, in order (page headers and trailers included)."""
        assert self.session is not None
        token: str | None = None
        while True:
            params = {"client_id": client_id, "limit": str(limit)}
            if token:
                params["page_token"] = token
            if project:
                params["project"] = project
            last: dict[str, Any] = {}
            async for line in self._lines(self._org("/sync/snapshot"), params):
                last = line
                yield line
                if "reset" in line:
                    return
            token = last.get("next_page_token")
            if not token:
                return

    async def _lines(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        assert self.session is not None
        if self.access is None:
            await self.refresh()
        waits, attempt = 0, 0
        while attempt < 2:
            attempt += 1
            headers = {"Authorization": f"Bearer {self.access}", "Rhythm-Sync": SYNC_HEADER,
                       "Accept-Encoding": "gzip"}  # fmt: skip
            try:
                async with self.session.get(self.base + path, params=params,
                                            headers=headers) as response:  # fmt: skip
                    if response.status == 401 and attempt == 1:
                        await self.refresh()
                        continue
                    if response.status == 429 and waits < RATE_LIMIT_WAITS:
                        waits, attempt = waits + 1, attempt - 1  # not a failed attempt
                        await asyncio.sleep(_retry_after(response))
                        continue
                    if response.status != 200:
                        raise SyncError(response.status, await _problem(response), "snapshot")
                    # whole chunks split here: aiohttp's per-line reads cost more than the
                    # decoding at 100,000 lines (docs/offline.md, "Figures")
                    rest = b""
                    async for chunk in response.content.iter_any():
                        *complete, rest = (rest + chunk).split(b"\n")
                        for raw in complete:
                            if raw.strip():
                                yield json.loads(raw)
                    if rest.strip():
                        yield json.loads(rest)
                    return
            except aiohttp.ClientError as exc:
                raise SyncError(0, {"detail": str(exc) or type(exc).__name__}, "snapshot") from exc

    async def pull(self, client_id: str, cursor: str, limit: int = 1000) -> dict[str, Any]:
        params = {"client_id": client_id, "cursor": cursor, "limit": str(limit)}
        return await self.request("GET", self._org("/sync/pull"), "pull", params=params)

    async def push(
        self, client_id: str, mutations: list[dict[str, Any]], client_time: str
    ) -> dict[str, Any]:
        body = {"client_id": client_id, "protocol": PROTOCOL, "schema": SCHEMA,
                "client_time": client_time, "mutations": mutations}  # fmt: skip
        return await self.request("POST", self._org("/sync/push"), "push", json=body)

    async def download(self, path: str, target: Path) -> int:
        """Bytes of an attachment (REST route), streamed to `target`."""
        assert self.session is not None
        if self.access is None:
            await self.refresh()
        headers = {"Authorization": f"Bearer {self.access}"}
        url = path if path.startswith("http") else self.credentials.url + path
        async with self.session.get(url, headers=headers) as response:
            if response.status != 200:
                raise SyncError(response.status, await _problem(response), "download")
            size = 0
            with target.open("wb") as out:
                async for chunk in response.content.iter_chunked(1 << 16):
                    out.write(chunk)
                    size += len(chunk)
        return size


async def _problem(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return {"detail": response.reason or ""}
    return body if isinstance(body, dict) else {}


def _retry_after(response: aiohttp.ClientResponse) -> float:
    """Seconds the server asked us to wait (a 429), within 0.05 s .. 30 s."""
    try:
        return min(max(float(response.headers.get("Retry-After", "1")), 0.05), 30.0)
    except ValueError:
        return 1.0


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, *, what: str, **kwargs: Any
) -> Any:
    """One request; a 429 (refused before any handler ran, so safe to repeat, push too) is
    waited out as the server's Retry-After says, up to RATE_LIMIT_WAITS times."""
    try:
        for _ in range(RATE_LIMIT_WAITS):
            async with session.request(method, url, **kwargs) as response:
                if response.status == 429:
                    await asyncio.sleep(_retry_after(response))
                    continue
                if response.status >= 400:
                    raise SyncError(response.status, await _problem(response), what)
                if response.status == 204:
                    return None
                return await response.json(content_type=None)
        async with session.request(method, url, **kwargs) as response:
            if response.status >= 400:
                raise SyncError(response.status, await _problem(response), what)
            return None if response.status == 204 else await response.json(content_type=None)
    except aiohttp.ClientError as exc:
        raise SyncError(0, {"detail": str(exc) or type(exc).__name__}, what) from exc
    except TimeoutError as exc:
        raise SyncError(0, {"detail": "timed out"}, what) from exc
