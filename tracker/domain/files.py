"""What a file is and what to call it: content sniffing and safe names (pure).

The type of an uploaded file is decided from its first bytes, never from the
client's Content-Type or the name's extension: a PNG renamed `.html` is a PNG,
and an HTML file called `cat.png` is HTML. Only a short allow-list of raster
image types is ever shown inline; everything else (SVG and HTML included,
whatever they claim) is served as a download.
"""

from __future__ import annotations

import unicodedata

#: How many leading bytes `sniff` needs.
SNIFF_BYTES = 512

#: Shown inline by browsers (and thumbnailed); everything else is a download.
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
)
_MARKUP: tuple[tuple[bytes, str], ...] = (
    (b"<svg", "image/svg+xml"),
    (b"<!doctype html", "text/html"),
    (b"<html", "text/html"),
    (b"<script", "text/html"),
)
#: Longest name kept, in characters (file systems allow 255 bytes; names show in lists).
MAX_NAME = 200


def sniff(head: bytes) -> str:
    """The media type of a file from its first bytes (at least SNIFF_BYTES, or all of it)."""
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<?xml") and b"<svg" in text:
        return "image/svg+xml"
    for prefix, media_type in _MARKUP:
        if text.startswith(prefix):
            return media_type
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "application/octet-stream"
    return "text/plain"


def safe_filename(name: str | None) -> str:
    """The name to show and to offer on download: the last path part of what the client
    sent, without control characters, trimmed; never used as a path on the server."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (
            (stem[: MAX_NAME - len(ext) - 1] + dot + ext)
            if dot and len(ext) < 16
            else name[:MAX_NAME]
        )
    return name or "file"
