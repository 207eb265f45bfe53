"""Attachments: files on issues and comments (metadata; the bytes are served raw)."""

from __future__ import annotations

from pydantic import Field

from tracker.domain.models.base import Output


class Attachment(Output):
    id: str
    issue: str = Field(description="The issue's key, e.g. WEB-3.")
    comment_id: str | None = None
    filename: str
    size: int
    content_type: str = Field(description="Decided from the file's first bytes, not the client.")
    sha256: str
    uploaded_by: str | None
    created_at: str
    url: str = Field(description="Where the bytes are served (GET).")
    thumbnail_url: str | None = Field(None, description="A small PNG of an image attachment.")


class AttachmentList(Output):
    items: list[Attachment]
