"""Child process for tests/test_ops_crash.py: a write burst that the parent kills with SIGKILL.

Run as `python -m tests.write_crash_child DATA_DIR SYNCHRONOUS`. It sets up an
org over real HTTP (tenant `synchronous` as given), prints `ORG <id>`, then eight
tasks create issues (and comment on every other one) as fast as they can; each
write is printed (`ISSUE <id>` / `COMMENT <id>`) only after its 201 came back,
that is after its COMMIT. `HELD True` says the tenant is held exclusively, as a
serving Rhythm holds it (no `-shm`: the WAL index is rebuilt from `-wal` on restart).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import Api, make_settings
from tracker.http.app import create_app
from tracker.http.keys import CORE


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(data_dir: Path, synchronous: str) -> None:
    settings = make_settings(data_dir, tenant_synchronous=synchronous)
    async with TestClient(TestServer(create_app(settings))) as client:
        api = Api(client)
        owner = await api.user()
        org = await api.org(owner, "acme")
        await api.project(owner, org, "WEB")
        say(f"ORG {org['id']}")
        tenant = client.app[CORE].tenants.lease_open(org["id"])
        assert tenant is not None
        say(f"HELD {tenant.held_exclusively}")  # as `rhythm serve` holds it: exclusively
        client.app[CORE].tenants.release(tenant)
        base = "/api/v1/orgs/acme/projects/WEB/issues"

        async def writer(n: int) -> None:
            i = 0
            while True:
                response = await client.post(
                    base, json={"title": f"burst {n}.{i}"}, headers=owner["headers"]
                )
                assert response.status == 201
                issue = await response.json()
                say(f"ISSUE {issue['id']}")
                if i % 2:
                    response = await client.post(
                        f"{base}/{issue['number']}/comments", json={"body": "ack"},
                        headers=owner["headers"],
                    )  # fmt: skip
                    assert response.status == 201
                    say(f"COMMENT {(await response.json())['id']}")
                i += 1

        await asyncio.gather(*(writer(n) for n in range(8)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
