"""Static files under versioned URLs, served with a one-year immutable cache lifetime.

Every URL carries a hash of the file (`/static/<hash>/<name>`), so a changed file gets
a new URL and a cache may keep the old one forever. Only files found in the package
at start are served (a fixed table: no path from the request touches the file system).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
CACHE_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    digest: str


class Assets:
    """The package's static files, read once: name -> Asset; `url(name)` for templates."""

    def __init__(self, root: Path = STATIC_DIR, files: tuple[str, ...] | None = None) -> None:
        self.files: dict[str, Asset] = {}
        paths = [root / f for f in files] if files is not None else sorted(root.rglob("*"))
        for path in paths:
            if not path.is_file() or path.suffix in (".md",):
                continue
            name = path.relative_to(root).as_posix()
            body = path.read_bytes()
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            self.files[name] = Asset(body, kind, hashlib.sha256(body).hexdigest()[:12])

    def url(self, name: str) -> str:
        return f"/static/{self.files[name].digest}/{name}"

    async def serve(self, request: web.Request) -> web.Response:
        asset = self.files.get(request.match_info["name"])
        if asset is None or asset.digest != request.match_info["digest"]:
            raise web.HTTPNotFound()
        return web.Response(
            body=asset.body,
            headers={
                "Content-Type": asset.content_type,
                "Cache-Control": CACHE_FOREVER,
                "X-Content-Type-Options": "nosniff",
            },
        )
