"""The one error tree. Each class carries its HTTP status and problem type.

Services and storage raise these; the HTTP layer renders every one of them as
RFC 9457 problem details in one place, and the CLI prints them in one place.
Builtins (KeyError, ValueError) are never mapped to statuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pydantic stays out of `import tracker.errors` at run time
    from pydantic import ValidationError

PROBLEM_BASE = "https://rhythm.dev/problems/"


class RhythmError(Exception):
    """Base of every error a user may see."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.code

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class BadRequest(RhythmError):
    status, code, title = 400, "bad-request", "Bad request"


class MalformedBody(BadRequest):
    code, title = "malformed-body", "Malformed request body"


class QuerySyntaxError(BadRequest):
    """A search query that does not parse; `position` is the 0-based offset of the fault."""

    code, title = "query-syntax", "Invalid query"

    def __init__(self, detail: str, position: int) -> None:
        super().__init__(f"{detail} (at position {position})", position=position)
        self.position = position


class Unauthorized(RhythmError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(RhythmError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(RhythmError):
    status, code, title = 404, "not-found", "Not found"


class MethodNotAllowed(RhythmError):
    status, code, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(RhythmError):
    status, code, title = 409, "conflict", "Conflict"


class PreconditionFailed(RhythmError):
    """A write based on a stale version (If-Match did not match)."""

    status, code, title = 412, "stale-version", "Precondition failed"


class PayloadTooLarge(RhythmError):
    status, code, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(RhythmError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(RhythmError):
    """Input that parsed but broke the rules; carries every field error at once."""

    status, code, title = 422, "validation", "Validation failed"

    def __init__(self, errors: Iterable[tuple[str, str]], detail: str | None = None) -> None:
        error_list = [{"field": field, "message": message} for field, message in errors]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in error_list)
        super().__init__(detail or summary or self.title, errors=error_list)
        self.errors = error_list

    @classmethod
    def from_pydantic(
        cls, exc: ValidationError, prefix: str = "", whole: str = "input"
    ) -> ValidationFailed:
        """Every error of a pydantic validation, each field named by its dotted location
        after `prefix`; an error on the value as a whole is named `whole`."""
        return cls(
            (prefix + (".".join(map(str, error["loc"])) or whole), error["msg"])
            for error in exc.errors(include_url=False)
        )


class TooManyRequests(RhythmError):
    status, code, title = 429, "throttled", "Too many requests"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(RhythmError):
    status, code, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class StorageUnavailable(ServiceUnavailable):
    """The disk refuses writes (read-only file system or file, I/O error); reads may work."""

    code, title = "storage-unavailable", "Storage unavailable"


class StorageFull(ServiceUnavailable):
    """The disk is full (SQLITE_FULL, ENOSPC): 507, and nothing of the write is stored."""

    status, code, title = 507, "storage-full", "Insufficient storage"


class QueryTooExpensive(ServiceUnavailable):
    """A user-driven query hit its time budget (the progress-handler watchdog)."""

    code, title = "query-too-expensive", "Query too expensive"


class QuotaExceeded(RhythmError):
    """The organization's storage quota would be exceeded (RHYTHM_ORG_QUOTA_MB)."""

    status, code, title = 507, "quota-exceeded", "Insufficient storage"


class DataDirError(RhythmError):
    """The data directory is missing, unwritable, or already served by another process."""

    code, title = "data-dir", "Data directory unusable"


class SchemaTooNew(RhythmError):
    """A database was written by a newer Rhythm; refusing to touch it."""

    code, title = "schema-too-new", "Database newer than this program"


# --- offline sync (docs/sync.md) ----------------------------------------------------------


class UpgradeRequired(RhythmError):
    """A sync client speaks a protocol or schema older than the server accepts."""

    status, code, title = 426, "upgrade-required", "Upgrade required"


class SyncVersionTooNew(BadRequest):
    code, title = "sync-version", "Sync version not supported"


class ClientUnknown(NotFound):
    code, title = "client-unknown", "Unknown sync client"


class ClientRevoked(Forbidden):
    code, title = "client-revoked", "Sync client revoked"


class ClientNotYours(Forbidden):
    code, title = "client-not-yours", "Sync client belongs to someone else"


class MutationGap(Conflict):
    code, title = "mutation-gap", "Mutation ids skip ahead"


class ClientIdReused(Conflict):
    code, title = "client-id-reused", "Client id reused by another replica"
