"""Random offline work on three replicas and the REST door, interleaved with syncs,
converges to the server's state, and every mutation gets an answer (docs/offline.md)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.offline_world import Device, World, converged
from tracker.errors import RhythmError

STAGES = ("Open", "In Progress", "Resolved", "Closed")
PRIORITIES = ("critical", "major", "normal", "minor")
SPRINTS = ("S1", "S2", "none")


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    return found


def live_keys(device: Device) -> list[str]:
    rows = device.view_rows(
        "SELECT p.key || '-' || i.number FROM issues i JOIN projects p ON p.id = i.project_id"
        " WHERE i.deleted_at IS NULL AND i.number < 900000000000000"
    )
    return [r[0] for r in rows]


async def offline_step(rng: random.Random, device: Device, n: int) -> None:
    keys = live_keys(device)
    choice = rng.randrange(8) if keys else 0
    try:
        if choice == 0:
            device.create("WEB", f"{device.person['email'][:3]} {n}",
                          priority=rng.choice(PRIORITIES))  # fmt: skip
        elif choice == 1:
            device.update(rng.choice(keys), priority=rng.choice(PRIORITIES))
        elif choice == 2:
            device.update(rng.choice(keys), status=rng.choice(STAGES))
        elif choice == 3:
            device.comment(rng.choice(keys), f"comment {n}")
        elif choice == 4:
            text = "".join(f"line {i}\n" for i in range(rng.randrange(1, 6)))
            device.update(rng.choice(keys), description=text + f"edit {n}\n")
        elif choice == 5:
            device.update(rng.choice(keys), tags=rng.sample(["bug", "ui", "api"], rng.randrange(3)))
        elif choice == 6:
            device.update(rng.choice(keys), fields={"Points": rng.choice(["", "1", "3", "8"])})
        else:
            device.update(rng.choice(keys), sprint=rng.choice(SPRINTS))
    except RhythmError:
        pass  # refused locally (e.g. nothing to change): nothing was recorded


async def rest_step(rng: random.Random, world: World, n: int) -> None:
    issues = await world.issues()
    choice = rng.randrange(6) if issues else 0
    if choice == 0:
        await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann,
                         json={"title": f"rest {n}"})  # fmt: skip
        return
    number = rng.choice(issues)["number"]
    path = f"/orgs/acme/projects/WEB/issues/{number}"
    if choice == 1:
        await world.call("PATCH", path, world.ann, json={"priority": rng.choice(PRIORITIES)})
    elif choice == 2:
        await world.call("PATCH", path, world.ann, json={"status": rng.choice(STAGES)})
    elif choice == 3:
        points = rng.choice([None, 2, 5])
        await world.call("PATCH", path, world.ann, json={"custom_fields": {"Points": points}})
    elif choice == 4:
        sprint = world.sprints.get(rng.choice(SPRINTS))  # "none": None
        await world.call("PATCH", path, world.ann, json={"sprint_id": sprint})
    elif rng.random() < 0.3:
        await world.call("DELETE", path, world.ann)
    else:
        await world.call("POST", path + "/comments", world.ann, json={"body": f"rest {n}"})


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_three_replicas_and_rest_converge(world: World, seed: int) -> None:
    rng = random.Random(seed)
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "seed"})
    await world.call("POST", "/orgs/acme/projects/WEB/fields", world.ann,
                     json={"name": "Points", "type": "number"})  # fmt: skip

    for name in SPRINTS[:-1]:
        made = await world.call("POST", "/orgs/acme/projects/WEB/sprints", world.ann,
                                json={"name": name})  # fmt: skip
        world.sprints[name] = made["id"]
    devices = [await world.device(p) for p in (world.ann, world.bob, world.cat)]
    for device in devices:
        await device.clone("acme", "WEB")
    recorded = {id(d): 0 for d in devices}
    for n in range(45):
        roll = rng.random()
        if roll < 0.6:
            device = rng.choice(devices)
            before = len(device.journal()["pending"])
            await offline_step(rng, device, n)
            recorded[id(device)] += len(device.journal()["pending"]) - before
        elif roll < 0.8:
            await rest_step(rng, world, n)
        else:
            await rng.choice(devices).sync()
    for _ in range(2):  # everyone pushes, then everyone pulls what the others pushed
        for device in devices:
            await device.sync()
    await converged(world, *devices)
    final = await world.issues()
    assert any(i["custom_fields"] or i["sprint_id"] for i in final)  # the new kinds ran
    for device in devices:
        journal = device.journal()
        assert journal["pending"] == []
        answered = sum(
            len(r.pushed) + len(r.local_rejects) for r in device.reports
        )  # every recorded mutation was answered once (a retry replays, never repeats)
        assert answered == recorded[id(device)]
        rejected = sum(r.rejected for r in device.reports)
        kept = [r for r in journal["rejected"] if r["problem"].get("code") != "kept_both"]
        assert len(kept) == rejected  # each rejection is kept, with its reason and text
