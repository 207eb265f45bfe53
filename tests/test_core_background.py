"""Background services: started after the databases open, stopped newest first before they close."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import tracker.core as core_module
from tests.conftest import make_settings
from tracker.core import open_core
from tracker.domain.ids import new_id
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services.runtime import Core


@pytest.fixture(autouse=True)
def only_test_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests watch the mechanism with their own services, not the core's (the hub)."""
    monkeypatch.setattr(core_module, "CORE_SERVICES", ())


class Recorder:
    """A dummy service with a real task; its stop reads a tenant DB and the system DB."""

    def __init__(self, core: Core, name: str, journal: list[str], org_id: str | None) -> None:
        self.core, self.name, self.journal, self.org_id = core, name, journal, org_id
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(asyncio.sleep(3600))
        self.journal.append(f"start {self.name}")

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        # Still open: the service may flush its state to a tenant on the way out.
        version = await self.core.system.read(lambda c: c.execute("PRAGMA user_version").fetchone())
        tenants = 0
        if self.org_id is not None:
            async with self.core.tenants.lease(self.org_id) as db:
                row = await db.read(lambda c: c.execute("SELECT count(*) FROM changes").fetchone())
                tenants = row[0]
        self.journal.append(f"stop {self.name} system={version[0] > 0} changes={tenants}")


class FailsToStart(Recorder):
    async def start(self) -> None:
        raise RuntimeError("port taken")


def recorders(journal: list[str], org_id: str | None, *names: str) -> list[Any]:
    return [lambda core, n=n: Recorder(core, n, journal, org_id) for n in names]


async def test_services_start_after_open_and_stop_in_reverse_before_databases_close(
    tmp_path: Path,
) -> None:
    journal: list[str] = []
    org_id = new_id()
    settings = make_settings(tmp_path / "data")
    async with open_core(settings, services=recorders(journal, org_id, "a", "b")) as core:
        assert journal == ["start a", "start b"]
        own = [s.name for s in core.background.running if s.name in ("a", "b")]
        assert own == ["a", "b"]  # after the core's own (CORE_SERVICES)
        await core.tenants.create(org_id)
        system = core.system
    assert journal[2:] == ["stop b system=True changes=0", "stop a system=True changes=0"]
    assert core.background.running == ()
    with pytest.raises(Exception, match="closed"):
        await system.read(lambda c: c.execute("SELECT 1").fetchone())


async def test_an_error_in_the_block_still_stops_services_first(tmp_path: Path) -> None:
    journal: list[str] = []
    org_id = new_id()
    settings = make_settings(tmp_path / "data")
    with pytest.raises(ZeroDivisionError):
        async with open_core(settings, services=recorders(journal, org_id, "a")) as core:
            await core.tenants.create(org_id)
            1 / 0  # noqa: B018
    assert journal == ["start a", "stop a system=True changes=0"]
    async with open_core(settings, background=False):  # the lock was released
        pass


async def test_background_false_starts_nothing(tmp_path: Path) -> None:
    journal: list[str] = []
    settings = make_settings(tmp_path / "data")
    factories = recorders(journal, None, "a")
    async with open_core(settings, background=False, services=factories) as core:
        assert [s.name for s in core.background.registered][-1:] == ["a"]
        assert core.background.running == ()
    assert journal == []


async def test_a_service_that_fails_to_start_stops_the_started_ones_and_fails_the_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal: list[str] = []
    factories = [
        *recorders(journal, None, "a"),
        lambda core: FailsToStart(core, "bad", journal, None),
        *recorders(journal, None, "c"),
    ]
    settings = make_settings(tmp_path / "data")
    with pytest.raises(RuntimeError, match="port taken"):
        async with open_core(settings, services=factories):
            pytest.fail("the core must not open with half of its background work")
    assert journal == ["start a", "stop a system=True changes=0"]
    assert "background service bad failed to start" in caplog.text
    async with open_core(settings, background=False):  # databases closed, lock released
        pass


async def test_http_shutdown_stops_services_before_closing_databases(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal: list[str] = []
    org_id = new_id()
    monkeypatch.setattr(core_module, "CORE_SERVICES", tuple(recorders(journal, org_id, "hub")))
    client = await aiohttp_client(create_app(make_settings(tmp_path / "data")))
    assert journal == ["start hub"]
    await client.app[CORE].tenants.create(org_id)
    await client.close()
    assert journal == ["start hub", "stop hub system=True changes=0"]
