"""The one request-level error of the sync client (no network code imported here, so the
CLI's read path can catch it without loading aiohttp)."""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    """A request-level answer the caller must act on (status and problem `code`)."""

    def __init__(self, status: int, problem: dict[str, Any] | None, what: str) -> None:
        self.status = status
        self.what = what
        self.problem = problem or {}
        self.code = str(self.problem.get("code") or _code_of(self.problem.get("type")) or "")
        detail = self.problem.get("detail") or self.problem.get("title") or ""
        super().__init__(f"{what}: HTTP {status} {self.code} {detail}".strip())

    def words(self) -> str:
        """What to tell the person, in plain words."""
        if self.status == 426:
            from tracker.replica.client import PROTOCOL, SCHEMA

            need = self.problem.get("min_protocol") or self.problem.get("min_schema")
            return (
                "this rhythm is too old for the server (protocol "
                f"{PROTOCOL}, schema {SCHEMA}; the server needs {need or 'newer'}): upgrade rhythm."
                " Your pending changes are kept."
            )
        if self.code == "client-revoked":
            return (
                "this replica was revoked on the server (e.g. a lost laptop was signed out):"
                " its pending changes cannot be pushed; `rhythm sync --rejected` lists them,"
                " clone again to keep working"
            )
        if self.code == "client-not-yours":
            return "this replica belongs to another account; log in as its owner or clone again"
        if self.status == 401 and self.what == "login":
            return "wrong email or password"
        if self.status == 401:
            return "your login expired or was revoked: run `rhythm login URL` again"
        if self.status == 0:
            return f"cannot reach the server ({self.problem.get('detail')}); pending changes kept"
        detail = self.problem.get("detail") or self.problem.get("title") or "error"
        return f"the server said {self.status}: {detail}"


def _code_of(type_uri: Any) -> str | None:
    return None if not isinstance(type_uri, str) else type_uri.rstrip("/").rpartition("/")[2]
