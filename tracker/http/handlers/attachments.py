"""Attachments on issues: multipart upload (streamed), list, download, thumbnail, delete.

Downloads are served so that no file can run in the tracker's origin: the type
comes from the file's bytes (decided at upload), only PNG, JPEG, GIF and WebP
are shown inline, everything else is `Content-Disposition: attachment`, and
every file response carries `X-Content-Type-Options: nosniff` and a sandboxing
Content-Security-Policy. aiohttp's FileResponse streams the file and answers
range requests.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import Field

from tracker.domain.models.attachments import AttachmentList
from tracker.domain.models.base import Input
from tracker.domain.permissions import Permission
from tracker.errors import BadRequest, UnsupportedMediaType
from tracker.http.binding import Call, Route, json_response
from tracker.http.params import ISSUE_PATH, issue_number
from tracker.services import attachments
from tracker.services.access import ProjectAccess

CHUNK_BYTES = 256 * 1024
FILE_FIELD = "file"
#: Headers on every file response: never sniffed, never run, never framed.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'",
    "Cache-Control": "private, max-age=3600",
}


#: What aiohttp's multipart reader raises on a malformed body.
MULTIPART_FAULTS = (ValueError, AssertionError, RuntimeError, HttpProcessingError)


class UploadQuery(Input):
    model_config = Input.model_config | {"strict": False}
    comment: str | None = Field(None, max_length=64, description="Attach to this comment.")


async def _files(call: Call[ProjectAccess]) -> AsyncIterator[attachments.Upload]:
    """The `file` parts of a multipart body, each handed over as a stream of chunks."""
    if call.request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send the files as multipart/form-data")
    try:
        reader = await call.request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            if part.name != FILE_FIELD:
                await part.release()  # other fields are ignored, and never buffered
                continue
            yield attachments.Upload(part.filename, _chunks(part))
    except MULTIPART_FAULTS as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    try:
        while chunk := await part.read_chunk(CHUNK_BYTES):
            yield chunk
    except MULTIPART_FAULTS as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None


async def upload(call: Call[ProjectAccess]) -> web.Response:
    comment = call.query.comment if call.query else None
    stored = await attachments.upload(
        call.core, call.access, issue_number(call), _files(call), call.actor, comment
    )
    return json_response(AttachmentList(items=stored), status=201)


async def list_attachments(call: Call[ProjectAccess]) -> web.Response:
    items = await attachments.list_attachments(call.core, call.access, issue_number(call))
    return json_response(AttachmentList(items=items))


def content_disposition(filename: str, inline: bool) -> str:
    """RFC 6266: an ASCII fallback and the UTF-8 name (RFC 8187)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def download(call: Call[ProjectAccess]) -> web.FileResponse:
    served = await attachments.file_to_serve(call.core, call.access, call.params["attachment_id"])
    digest = base64.b64encode(bytes.fromhex(served.sha256)).decode()
    headers = {
        **FILE_HEADERS,
        "Content-Type": served.content_type,
        "Content-Disposition": content_disposition(served.filename, served.inline),
        "Repr-Digest": f"sha-256=:{digest}:",
    }
    return web.FileResponse(served.path, chunk_size=CHUNK_BYTES, headers=headers)


async def thumbnail(call: Call[ProjectAccess]) -> web.FileResponse:
    path = await attachments.thumbnail(call.core, call.access, call.params["attachment_id"])
    headers = {**FILE_HEADERS, "Content-Type": "image/png", "Content-Disposition": "inline"}
    return web.FileResponse(path, headers=headers)


async def delete(call: Call[ProjectAccess]) -> web.Response:
    await attachments.delete_attachment(
        call.core, call.access, call.params["attachment_id"], call.actor
    )
    return web.Response(status=204)


ITEM = "/orgs/{org}/projects/{project}/attachments/{attachment_id}"
ROUTES = [
    Route(
        "POST",
        ISSUE_PATH + "/attachments",
        upload,
        Permission.COMMENT_CREATE,
        "Attach files to an issue (multipart/form-data, one or more `file` parts)",
        upload=FILE_FIELD,
        query=UploadQuery,
        response=AttachmentList,
        status=201,
        tag="attachments",
    ),
    Route(
        "GET",
        ISSUE_PATH + "/attachments",
        list_attachments,
        Permission.PROJECT_READ,
        "An issue's attachments, oldest first",
        response=AttachmentList,
        tag="attachments",
    ),
    Route(
        "GET",
        ITEM,
        download,
        Permission.PROJECT_READ,
        "The bytes of an attachment (images inline, everything else as a download; ranges)",
        produces="application/octet-stream",
        tag="attachments",
    ),
    Route(
        "GET",
        ITEM + "/thumbnail",
        thumbnail,
        Permission.PROJECT_READ,
        "A PNG preview of an image attachment (at most 320 x 320)",
        produces="image/png",
        errors=(415, 422),
        tag="attachments",
    ),
    Route(
        "DELETE",
        ITEM,
        delete,
        Permission.COMMENT_CREATE,
        "Delete an attachment (its uploader or a project admin)",
        status=204,
        tag="attachments",
    ),
]
