"""Child process for tests/test_member_log.py: dies by SIGKILL between a membership's two commits.

Run as `python -m tests.member_crash_child DATA_DIR OP HOOK OUT`. It sets up an
org over real HTTP, writes the ids it made to OUT, arms HOOK and then adds
(OP=add) or removes (OP=remove) a member; the hook kills the process:
- `before_tenant`: the system transaction committed, the tenant one never ran;
- `after_tenant`: the tenant transaction committed, the queued intent was not deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import Api, make_settings
from tracker.http.app import create_app
from tracker.services import member_log
from tracker.storage import member_outbox


def die(*_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(hook: str) -> None:
    if hook == "before_tenant":
        member_log.drain = die  # type: ignore[assignment]
    elif hook == "after_tenant":
        member_outbox.remove = die
    else:
        raise SystemExit(f"unknown hook {hook}")


async def main(data_dir: Path, op: str, hook: str, out: Path) -> None:
    async with TestClient(TestServer(create_app(make_settings(data_dir)))) as client:
        api = Api(client)
        owner, bob = await api.user(), await api.user()
        org = await api.org(owner, "acme")
        await api.project(owner, org, "WEB")
        members = "/api/v1/orgs/acme/members"
        if op == "remove":
            body = {"user_id": bob["id"], "role": "member"}
            assert (await client.post(members, json=body, headers=owner["headers"])).status == 201
            url = "/api/v1/orgs/acme/projects/WEB/members"
            body = {"user_id": bob["id"], "role": "developer"}
            assert (await client.post(url, json=body, headers=owner["headers"])).status == 201
        ids = {"org": org["id"], "bob": bob["id"], "bob_headers": bob["headers"]}
        out.write_text(json.dumps(ids))
        arm(hook)
        if op == "remove":
            await client.delete(f"{members}/{bob['id']}", headers=owner["headers"])
        else:
            body = {"user_id": bob["id"], "role": "admin"}
            await client.post(members, json=body, headers=owner["headers"])
    sys.exit(3)  # never reached: the hook killed the process


if __name__ == "__main__":
    data, op, hook, out = sys.argv[1:5]
    asyncio.run(main(Path(data), op, hook, Path(out)))
