"""Provisional keys in pushed text: `WEB-~3fa9c` (project key, `~`, the last 5 hex digits
of an issue id made offline) becomes the real `WEB-124` when the issue was created by
the same client; anything else is left as typed (docs/sync.md)."""

from __future__ import annotations

import re
import sqlite3

from tracker.storage import sync as sync_sql

PROVISIONAL = re.compile(r"\b([A-Z][A-Z0-9]{1,9})-~([0-9a-f]{5})\b")


def rewrite_keys(conn: sqlite3.Connection, client_id: str, text: str) -> str:
    """`text` with this client's provisional keys replaced by the issues' real keys."""
    found = PROVISIONAL.findall(text)
    if not found:
        return text
    known = sync_sql.issues_created_by_client(conn, client_id, sorted({s for _, s in found}))

    def real(match: re.Match[str]) -> str:
        hit = known.get(match.group(2))
        if hit is None or hit[0].upper() != match.group(1).upper():
            return match.group(0)
        return f"{hit[0]}-{hit[1]}"

    return PROVISIONAL.sub(real, text)
