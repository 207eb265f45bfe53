"""POST …/issues/import: a JSON Lines file of issues into a running server.

The body is spooled to a hidden temporary file in the data directory (the
import reads it twice: validation first, so a bad file imports nothing), with
its size counted while reading (RHYTHM_MAX_IMPORT_BYTES, 413 beyond), then
handed to the same service as `rhythm issue import`.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from tracker.domain.models.imports import ImportedIssue, ImportQuery, ImportReport
from tracker.domain.permissions import Permission
from tracker.errors import PayloadTooLarge
from tracker.http.binding import Call, Route, json_response
from tracker.services import import_files
from tracker.services.access import ProjectAccess

CHUNK_BYTES = 256 * 1024


async def import_issues(call: Call[ProjectAccess]) -> web.Response:
    settings = call.core.settings
    with tempfile.NamedTemporaryFile(dir=settings.data_dir, prefix=".import-") as spool:
        size = 0
        async for chunk in call.request.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
            if size > settings.max_import_bytes:
                raise PayloadTooLarge(f"an import file may hold {settings.max_import_bytes} bytes")
            await asyncio.to_thread(spool.write, chunk)
        await asyncio.to_thread(spool.flush)
        report = await import_files.import_file(
            call.core,
            call.access,
            call.actor,
            Path(spool.name),
            unknown_users_as_me=call.query.unknown_users_as_me,
        )
    return json_response(report)


ROUTES = [
    Route(
        "POST",
        "/orgs/{org}/projects/{project}/issues/import",
        import_issues,
        Permission.ISSUE_IMPORT,
        "Import issues with comments from JSON Lines (one issue per line; checked whole first)",
        raw_body=("application/x-ndjson", ImportedIssue),
        query=ImportQuery,
        response=ImportReport,
        tag="issues",
    )
]
