"""Shell completion (`rhythm --install-completion`) of org slugs, project keys, issue keys.

Completion runs on every <TAB>, so it must be instant and must never wait for or take
the data directory's lock (a running server holds it): it reads the SQLite files
read-only (`mode=ro`, which also never creates a file), with plain sqlite3 and no core.
Any failure completes nothing rather than printing an error into the shell.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

LIMIT = 50


def _data_dir(ctx: Any) -> Path:
    given = (getattr(ctx, "params", None) or {}).get("data_dir")
    return Path(given or os.environ.get("RHYTHM_DATA_DIR") or "tenants")


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True,
                                 timeout=0.2)) as conn:  # fmt: skip
        yield conn


def _org(ctx: Any) -> str | None:
    from cli.target import Target

    params = getattr(ctx, "params", None) or {}
    return Target(params.get("data_dir"), params.get("org")).org_if_any


def _tenant(ctx: Any) -> Path | None:
    org, data_dir = _org(ctx), _data_dir(ctx)
    if not org:
        return None
    with _read_only(data_dir / "_system.db") as conn:
        row = conn.execute(
            "SELECT id FROM orgs WHERE slug = ? AND archived_at IS NULL", (org.lower(),)
        ).fetchone()
    return None if row is None else data_dir / row[0] / "tracker.db"


def orgs(ctx: Any, incomplete: str) -> list[str]:
    """Live org slugs starting with what was typed."""
    try:
        with _read_only(_data_dir(ctx) / "_system.db") as conn:
            rows = conn.execute(
                "SELECT slug FROM orgs WHERE archived_at IS NULL AND slug LIKE ? || '%' "
                "ORDER BY slug LIMIT ?",
                (incomplete.lower(), LIMIT),
            ).fetchall()
    except (sqlite3.Error, OSError, ValueError):
        return []
    return [slug for (slug,) in rows]


def _project_keys(ctx: Any, prefix: str) -> list[str]:
    tenant = _tenant(ctx)
    if tenant is None:
        return []
    with _read_only(tenant) as conn:
        rows = conn.execute(
            "SELECT key FROM projects WHERE deleted_at IS NULL AND key LIKE ? || '%' "
            "ORDER BY key LIMIT ?",
            (prefix.upper(), LIMIT),
        ).fetchall()
    return [key for (key,) in rows]


def projects(ctx: Any, incomplete: str) -> list[str]:
    """Project keys of the org named by --org (or the context)."""
    try:
        return _project_keys(ctx, incomplete)
    except (sqlite3.Error, OSError, ValueError):
        return []


def issue_keys(ctx: Any, incomplete: str) -> list[str]:
    """`W` -> `WEB-`; `WEB-` or `WEB-1` -> the newest live issue keys that match."""
    try:
        key, dash, number = incomplete.upper().partition("-")
        if not dash:
            return [f"{k}-" for k in _project_keys(ctx, key)]
        tenant = _tenant(ctx)
        if tenant is None or (number and not number.isdigit()):
            return []
        with _read_only(tenant) as conn:
            rows = conn.execute(
                "SELECT i.number FROM issues i JOIN projects p ON p.id = i.project_id "
                "WHERE p.key = ? AND i.deleted_at IS NULL AND CAST(i.number AS TEXT) LIKE ? || '%' "
                "ORDER BY i.number DESC LIMIT ?",
                (key, number, LIMIT),
            ).fetchall()
        return [f"{key}-{n}" for (n,) in rows]
    except (sqlite3.Error, OSError, ValueError):
        return []
