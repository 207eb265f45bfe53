"""Child process for tests/test_services_script_triggers.py: dies by SIGKILL right after an
issue create commits, before the script consumer can see it.

Run as `python -m tests.script_crash_child DATA_DIR OUT`. It sets up an org, a
project and an event script over real HTTP, writes the ids to OUT, then arms a bus
subscriber that kills the process when the create's batch is published (which happens
after COMMIT, in the same call that wakes the consumer) and creates the issue.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import Api, make_settings
from tracker.domain.changes import ChangeBatch
from tracker.http.app import create_app
from tracker.http.keys import CORE

WELCOME = 'on_event("issue.created", function(ctx) ctx.issue:add_comment("welcome") end)'


def die_on_create(batch: ChangeBatch) -> None:
    if any(c.entity == "issue" and c.op == "create" for c in batch.changes):
        os.kill(os.getpid(), signal.SIGKILL)


async def main(data_dir: Path, out: Path) -> None:
    async with TestClient(TestServer(create_app(make_settings(data_dir)))) as client:
        api = Api(client)
        owner = await api.user()
        org = await api.org(owner, "acme")
        await api.project(owner, org, "WEB")
        base = "/api/v1/orgs/acme/projects/WEB"
        body = {"name": "welcome", "source": WELCOME}
        response = await client.post(f"{base}/scripts", json=body, headers=owner["headers"])
        assert response.status == 201, await response.text()
        script = await response.json()
        out.write_text(json.dumps({"org": org["id"], "script": script["id"]}))
        client.app[CORE].events.subscribe(die_on_create)
        await client.post(f"{base}/issues", json={"title": "hello"}, headers=owner["headers"])
    sys.exit(3)  # never reached: the subscriber killed the process


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
