"""Attachments in the web UI: the files and thumbnails an issue page shows.

Served with the same service and the same headers as the API's download route
(`tracker.domain.files.file_headers`), authenticated by the session cookie.
"""

from __future__ import annotations

from aiohttp import web

from tracker.domain.files import FILE_HEADERS, file_headers
from tracker.domain.permissions import Permission
from tracker.services import attachments
from tracker.ui.app import Ctx, page

ITEM = "/o/{org}/p/{project}/attachments/{attachment_id}"


@page(Permission.PROJECT_READ)
async def download(ctx: Ctx) -> web.StreamResponse:
    served = await attachments.file_to_serve(ctx.core, ctx.access, ctx.params["attachment_id"])
    headers = file_headers(served.content_type, served.filename, served.inline, served.sha256)
    return web.FileResponse(served.path, headers=headers)


@page(Permission.PROJECT_READ)
async def thumbnail(ctx: Ctx) -> web.StreamResponse:
    path = await attachments.thumbnail(ctx.core, ctx.access, ctx.params["attachment_id"])
    headers = {**FILE_HEADERS, "Content-Type": "image/png", "Content-Disposition": "inline"}
    return web.FileResponse(path, headers=headers)


ROUTES = [("GET", ITEM, download), ("GET", ITEM + "/thumbnail", thumbnail)]
