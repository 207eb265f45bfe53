"""Optimistic concurrency: every versioned record's ETag is its version number."""

from __future__ import annotations


def etag_of(version: int) -> str:
    return f'"{version}"'


def if_match_ok(header: str | None, version: int) -> bool:
    """RFC 9110 If-Match against a version: `"3"`, `W/"3"`, `3`, lists and `*`.

    No header (or `*`) matches any version; anything else that names no current
    version fails, which the caller answers with 412 and changes nothing.
    """
    if header is None or header.strip() == "*":
        return True
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return str(version) in tags
