"""Offline tests' world: a real Rhythm server on 127.0.0.1 and real replicas in temp dirs.

Each `Device` is one computer: its own $RHYTHM_HOME (login, replicas), switched
in around every call, so three replicas live in one test process. Replicas are
driven through the same functions the CLI calls (tracker.replica.*), and the
CLI itself through typer's runner in a thread (`Device.cli`), as a person would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.conftest import Api
from tracker.replica import commands
from tracker.replica.client import Credentials, SyncClient
from tracker.replica.engine import TENANT_DB, Replica, Report, clone

PASSWORD = "correct horse"


@dataclass
class Device:
    """One computer with its own $RHYTHM_HOME, logged in as one person."""

    home: Path
    url: str
    person: dict[str, Any]
    replica_dir: Path | None = None
    credentials: Credentials | None = None
    reports: list[Report] = field(default_factory=list)

    @contextlib.contextmanager
    def env(self) -> Iterator[None]:
        saved = {k: os.environ.get(k) for k in ("RHYTHM_HOME", "RHYTHM_REPLICA",
                                                 "RHYTHM_DATA_DIR")}  # fmt: skip
        os.environ["RHYTHM_HOME"] = str(self.home)
        os.environ.pop("RHYTHM_REPLICA", None)
        os.environ.pop("RHYTHM_DATA_DIR", None)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    async def login(self) -> None:
        with self.env():
            self.credentials = await SyncClient.login(self.url, self.person["email"], PASSWORD)
            self.credentials.save()

    async def clone(self, org: str, project: str | None = None) -> int:
        assert self.credentials is not None
        with self.env():
            self.replica_dir, count = await clone(self.credentials, org, project)
        return count

    def replica(self) -> Replica:
        assert self.replica_dir is not None
        return Replica(self.replica_dir)

    async def sync(self, *, push: bool = True, pull: bool = True) -> Report:
        with self.env():
            credentials = Credentials.load(self.url)
            assert credentials is not None
            replica = self.replica()
            try:
                async with SyncClient(credentials, replica.org) as client:
                    report = await replica.sync(client, push=push, pull=pull)
            finally:
                replica.close()
        self.reports.append(report)
        return report

    def create(self, project: str, title: str, **data: Any) -> str:
        assignees = data.pop("assignees", None)
        fields, sprint = data.pop("fields", {}), data.pop("sprint", None)
        replica = self.replica()
        try:
            return commands.create_issue(replica, project, {"title": title, **data}, fields,
                                         assignees, sprint)  # fmt: skip
        finally:
            replica.close()

    def update(self, key: str, **data: Any) -> list[str]:
        """`fields`: raw NAME=VALUE text as typed; `sprint`: a name, an id or `none`."""
        assignees = data.pop("assignees", None)
        fields, sprint = data.pop("fields", {}), data.pop("sprint", None)
        replica = self.replica()
        try:
            return commands.update_issue(replica, key, data, fields, assignees, sprint)
        finally:
            replica.close()

    def comment(self, key: str, body: str) -> str:
        replica = self.replica()
        try:
            return commands.comment(replica, key, body)
        finally:
            replica.close()

    def view_rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        replica = self.replica()
        try:
            path = replica.view / replica.org_id / TENANT_DB
        finally:
            replica.close()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, args).fetchall()

    def journal(self) -> dict[str, Any]:
        replica = self.replica()
        try:
            return {"pending": replica.journal.pending(), "rejected": replica.journal.rejected(),
                    "meta": replica.journal.meta()}  # fmt: skip
        finally:
            replica.close()

    async def cli(self, *args: str, input: str | None = None) -> Any:
        """`rhythm ARGS` as typed on this computer (in a thread: the CLI runs its own loop)."""
        runner = CliRunner()
        env = {"RHYTHM_HOME": str(self.home), "RHYTHM_DATA_DIR": None, "RHYTHM_REPLICA": None,
               "RHYTHM_ORG": None, "RHYTHM_PROJECT": None, "RHYTHM_AS": None,
               "RHYTHM_CLI_CONTEXT": str(self.home / "context.json"), "COLUMNS": "250"}  # fmt: skip
        from cli.main import app

        return await asyncio.to_thread(runner.invoke, app, list(args), input=input, env=env)


class World:
    """The server, its people and org; REST calls as any of them."""

    def __init__(self, client: Any, api: Api, tmp: Path, url: str | None = None) -> None:
        """`client`: aiohttp's TestClient, or a ClientSession with a base_url (a server in
        another process)."""
        self.client, self.api, self.tmp = client, api, tmp
        self.url = url or str(client.make_url("")).rstrip("/")
        self.devices = 0
        self.sprints: dict[str, str] = {}  # name -> id, for tests that make sprints

    async def setup(self) -> None:
        self.ann = await self.api.user("ann@example.com", PASSWORD)
        self.bob = await self.api.user("bob@example.com", PASSWORD)
        self.cat = await self.api.user("cat@example.com", PASSWORD)
        self.org = await self.api.org(self.ann, "acme")
        self.web = await self.api.project(self.ann, self.org, "WEB")
        for person, role in ((self.bob, "developer"), (self.cat, "developer")):
            await self.call("POST", "/orgs/acme/members", self.ann,
                            json={"email": person["email"], "role": "member"})  # fmt: skip
            await self.call("POST", "/orgs/acme/projects/WEB/members", self.ann,
                            json={"email": person["email"], "role": role})  # fmt: skip

    async def call(self, method: str, path: str, who: dict[str, Any], **kw: Any) -> Any:
        response = await self.client.request(method, "/api/v1" + path, headers=who["headers"],
                                             **kw)  # fmt: skip
        text = await response.text()
        assert response.status < 300, f"{method} {path}: {response.status} {text}"
        return json.loads(text) if text else None

    async def raw(self, method: str, path: str, who: dict[str, Any], **kw: Any) -> Any:
        return await self.client.request(method, "/api/v1" + path, headers=who["headers"], **kw)

    async def device(self, person: dict[str, Any]) -> Device:
        self.devices += 1
        device = Device(self.tmp / f"device{self.devices}", self.url, person)
        await device.login()
        return device

    async def issue(self, key: str, who: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.call("GET", f"/orgs/acme/issues/{key}", who or self.ann)  # type: ignore[no-any-return]

    async def issues(self, project: str = "WEB", who: dict[str, Any] | None = None) -> list[Any]:
        found: list[Any] = []
        cursor = None
        while True:
            query = "?limit=200" + (f"&cursor={cursor}" if cursor else "")
            page = await self.call("GET", f"/orgs/acme/projects/{project}/issues{query}",
                                   who or self.ann)  # fmt: skip
            found += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return found


COMPARED = ("id", "number", "title", "description", "type", "priority", "status", "assignees",
            "tags", "parent", "due_date", "estimate", "comment_count", "version", "sprint_id",
            "custom_fields")  # fmt: skip


def shape(issue: dict[str, Any]) -> dict[str, Any]:
    return {k: issue.get(k) for k in COMPARED}


async def view_issues(device: Device, project: str = "WEB") -> list[dict[str, Any]]:
    """The replica's view through the ordinary read code (what `rhythm issue list` shows)."""
    from tracker.core import open_core
    from tracker.domain.models.issues import IssueListQuery
    from tracker.services import issue_lists
    from tracker.services.acting import act_as
    from tracker.settings import Settings

    replica = device.replica()
    try:
        view, org, email = replica.view, replica.org, replica.email
    finally:
        replica.close()
    found: list[dict[str, Any]] = []
    async with open_core(Settings(data_dir=view, log_level="warning"), background=False) as core:
        access, _ = await act_as(core, org, project, email, "cli")  # type: ignore[arg-type]
        cursor = None
        while True:
            query = IssueListQuery(limit=200, cursor=cursor)
            page = await issue_lists.list_issues(core, access, query)
            found += [i.model_dump() for i in page.items]
            cursor = page.next_cursor
            if not cursor:
                return found


async def converged(world: World, *devices: Device) -> None:
    """Every replica's view equals the server's issues (what each may see)."""
    server = sorted((shape(i) for i in await world.issues()), key=lambda i: i["number"])
    for device in devices:
        mine = sorted((shape(i) for i in await view_issues(device)), key=lambda i: i["number"])
        assert mine == server, (device.person["email"], mine, server)
