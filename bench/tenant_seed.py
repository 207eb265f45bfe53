"""Many tenants fast: copies of one migrated template file plus their directory rows.

Creating 10,000 orgs through ``POST /api/v1/orgs`` takes minutes on this box
(each create migrates a fresh file: ~98 schema objects, 14 migrations). The
benchmarks only need orgs that *exist* and can be read, so this module makes
one tenant file with the real code (``TenantPool.create``: the same migrations,
pragmas and permissions as the server), then copies it into ``count`` folders
named by fresh org ids and inserts their directory rows (``orgs`` +
``org_members``, through ``tracker.storage.orgs.insert_org``, the server's own
SQL) in one system transaction. The server may be running meanwhile: SQLite's
locking makes the insert safe and a new slug is looked up on first use.

What the copies lack compared with an API create: the org-creation change row
in each tenant's change log (the template has one empty log). Reads of
``/projects`` do not look at it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from pathlib import Path

from tracker.domain.ids import new_id, now_iso
from tracker.storage.orgs import insert_org
from tracker.storage.pool import TENANT_FILE, TenantPool

SYSTEM_FILE = "_system.db"


async def make_template(folder: Path) -> Path:
    """One migrated, checkpointed (WAL-free) tenant file made by the server's own code."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = TenantPool(folder, max_open=1)
    org_id = new_id()
    await pool.create(org_id)
    await pool.close_all()  # TRUNCATE checkpoint: everything is in the main file
    return folder / org_id / TENANT_FILE


def copy_tenants(data_dir: Path, template: Path, count: int) -> list[str]:
    """`count` new tenant folders (0700) holding a copy of `template` (0600); their ids."""
    org_ids = [new_id() for _ in range(count)]
    for org_id in org_ids:
        folder = data_dir / org_id
        folder.mkdir(mode=0o700)
        shutil.copyfile(template, folder / TENANT_FILE)
        os.chmod(folder / TENANT_FILE, 0o600)
    return org_ids


async def tenant_copies(work: Path, count: int) -> tuple[Path, list[str]]:
    """A data dir under `work` holding `count` copies of a fresh template: (dir, ids)."""
    data = work / "data"
    data.mkdir()
    template = await make_template(work / "template")
    return data, copy_tenants(data, template, count)


def insert_directory_rows(
    data_dir: Path, org_ids: list[str], owner_id: str, prefix: str
) -> list[str]:
    """Directory rows for `org_ids` (slugs `<prefix>00000`…), owned by `owner_id`; the slugs."""
    conn = sqlite3.connect(data_dir / SYSTEM_FILE, isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        slugs = []
        for index, org_id in enumerate(org_ids):
            slug = f"{prefix}{index:05d}"
            row = {"id": org_id, "slug": slug, "name": slug, "created_by": owner_id,
                   "created_at": now_iso()}  # fmt: skip
            if not insert_org(conn, row):
                raise RuntimeError(f"slug {slug} taken")
            slugs.append(slug)
        conn.execute("COMMIT")
        return slugs
    finally:
        conn.close()


def only_user(data_dir: Path) -> str:
    """The id of the one user the benchmark registered."""
    conn = sqlite3.connect(f"file:{data_dir / SYSTEM_FILE}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id FROM users").fetchall()
    finally:
        conn.close()
    if len(rows) != 1:
        raise RuntimeError(f"expected one registered user, found {len(rows)}")
    return str(rows[0][0])


async def seed(data_dir: Path, count: int, work: Path, prefix: str = "t") -> list[tuple[str, str]]:
    """`count` readable orgs owned by the only user; their (slug, org id) in creation order."""
    template = await make_template(work / "template")
    org_ids = await asyncio.to_thread(copy_tenants, data_dir, template, count)
    owner = only_user(data_dir)
    slugs = await asyncio.to_thread(insert_directory_rows, data_dir, org_ids, owner, prefix)
    return list(zip(slugs, org_ids, strict=True))
