"""Where replicas and stored logins live: `$RHYTHM_HOME` (default `$XDG_DATA_HOME/rhythm`).

$RHYTHM_HOME/<host>_<port>/credentials.json   refresh token (0600), never a password
$RHYTHM_HOME/<host>_<port>/<org>/             one replica (replica.db, base/, view/)
$RHYTHM_HOME/active                           the replica commands act on by default
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

ACTIVE_FILE = "active"
CREDENTIALS_FILE = "credentials.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def home() -> Path:
    explicit = os.environ.get("RHYTHM_HOME")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rhythm"


def server_dir(url: str) -> Path:
    """One folder per server: host and port, nothing the shell or a path could misread."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return home() / _SAFE.sub("_", f"{parts.hostname or 'localhost'}_{port}")


def replica_dir(url: str, org: str) -> Path:
    return server_dir(url) / _SAFE.sub("_", org)


def active_replica() -> Path | None:
    """The replica commands act on when no data directory is named: $RHYTHM_REPLICA
    (`none` turns replicas off), else the one `rhythm clone` (or `rhythm use`) chose."""
    explicit = os.environ.get("RHYTHM_REPLICA")
    if explicit:
        return None if explicit.lower() in ("none", "off") else Path(explicit).expanduser()
    try:
        text = (home() / ACTIVE_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    path = Path(text) if text else None
    return path if path is not None and (path / "replica.db").is_file() else None


def set_active(path: Path | None) -> None:
    target = home() / ACTIVE_FILE
    if path is None:
        target.unlink(missing_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(str(path.absolute()) + "\n", encoding="utf-8")
    tmp.replace(target)
