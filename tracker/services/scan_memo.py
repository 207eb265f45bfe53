"""What the start-up pass read from each tenant last time, kept while the file is unchanged.

The pass (tenant_scan.py) opens every tenant to learn where the services' work is
(enabled scripts, an unread feed, queued notices): ~4 ms per org, 40 s for 10,000.
Yet between two runs most tenant files are not written at all. Their answers are
kept in `<data_dir>/tenant-scan.json`, each under the identity of the file it was
read from: inode, size, modification and change times (`FileKey`). At the next start
a tenant whose file has the same identity gets its answers from here and is not
opened; any write (SQLite's checkpoint, a restore, an import, a copy, another
process) changes the change time, so it is read again.

Two cases where the identity cannot vouch for the content, so nothing is kept:

* a `-wal` beside the file holding frames: the content is partly in the WAL
  (the tenant is open, or the last run crashed);
* a file changed less than `RACY_SECONDS` before it was looked at: file times come
  from a coarse clock, so a write in the same tick, after the look, could leave
  them unchanged (git's "racily clean" entries, solved the same way).

Answers are kept per reader under its name and a digest of its code, and the whole
memo under the release and tenant schema version: a changed reader or an upgrade reads
again. The memo is a cache: a missing, unreadable or foreign file is an empty memo, and
it is replaced whole (written beside, then renamed) after each pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

from tracker import __version__
from tracker.storage.files import private_file
from tracker.storage.migrate import latest_version

log = logging.getLogger(__name__)

MEMO_FILE = "tenant-scan.json"
FORMAT = 1
#: File times tick at most every 10 ms on Linux file systems; one second is a wide margin.
RACY_SECONDS = 1.0

FileKey = tuple[int, int, int, int]  # inode, size, mtime ns, ctime ns
Values = dict[str, Any]  # reader id -> its answer


def reader_id(reader: Callable[..., Any]) -> str:
    """A reader's name across runs: module, qualified name and a digest of its code, so an
    answer given by another version of the reader is not taken for this one's."""
    code = getattr(reader, "__code__", None)
    digest = hashlib.sha256()
    if code is not None:
        _digest_code(code, digest)
    return f"{reader.__module__}.{reader.__qualname__}:{digest.hexdigest()[:12]}"


def _digest_code(code: CodeType, into: Any) -> None:
    # Not marshal: its output depends on reference counts, so it varies between calls.
    into.update(code.co_code)
    into.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _digest_code(const, into)
        else:
            into.update(repr(const).encode())


def _code_version() -> str:
    """The release and tenant schema the answers were read with (another: read again)."""
    return f"{__version__}/{latest_version('tenant')}"


def file_key(path: Path | str, now: float | None = None) -> FileKey | None:
    """The identity of a tenant file at rest, or None when it cannot vouch for the content."""
    try:
        wal = os.stat(f"{path}-wal")
    except FileNotFoundError:
        pass
    else:
        if wal.st_size > 0:
            return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    if (now if now is not None else time.time()) - changed / 1e9 < RACY_SECONDS:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class Recalled:
    """What the memo answers for a pass, and what the pass must still read."""

    memo: ScanMemo
    keys: dict[str, FileKey | None]  # org -> its file's identity now
    known: list[tuple[str, Values]]  # orgs answered from the memo
    to_read: list[str]


def recall_all(
    memo_path: Path, tenant_file: Callable[[str], Path], org_ids: Iterable[str], readers: list[str]
) -> Recalled:
    """Load the memo and look at every tenant file (blocking: run it off the event loop)."""
    memo = ScanMemo.load(memo_path)
    now = time.time()
    keys = {org_id: file_key(tenant_file(org_id), now) for org_id in org_ids}
    memo.retain(keys)
    known, to_read = [], []
    for org_id, key in keys.items():
        values = memo.recall(org_id, key, readers)
        if values is None:
            to_read.append(org_id)
        else:
            known.append((org_id, values))
    return Recalled(memo, keys, known, to_read)


class ScanMemo:
    """Answers by org, each valid for one file identity."""

    def __init__(self, entries: dict[str, tuple[FileKey, Values]] | None = None) -> None:
        self.entries = entries or {}
        self.changed = False  # since loaded: a save has something to write

    @classmethod
    def load(cls, path: Path) -> ScanMemo:
        """The memo in `path`; empty if absent, unreadable or of another format (blocking)."""
        try:
            raw = json.loads(path.read_bytes())
            if raw.get("format") != FORMAT or raw.get("code") != _code_version():
                return cls()
            return cls(
                {
                    str(org_id): (tuple(entry["key"]), dict(entry["values"]))
                    for org_id, entry in raw["orgs"].items()
                }
            )
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("tenant scan memo %s not used (%s); every tenant is read", path, exc)
            return cls()

    def recall(self, org_id: str, key: FileKey | None, readers: Iterable[str]) -> Values | None:
        """The remembered answers of every reader in `readers`, or None if any is not known."""
        if key is None:
            return None
        entry = self.entries.get(org_id)
        if entry is None or entry[0] != key:
            return None
        values = entry[1]
        try:
            return {reader: _as_read(values[reader]) for reader in readers}
        except KeyError:
            return None

    def keep(self, org_id: str, key: FileKey, values: Values) -> None:
        """Remember answers for `key`, beside answers other readers gave for the same file."""
        entry = self.entries.get(org_id)
        merged = {**entry[1], **values} if entry is not None and entry[0] == key else dict(values)
        self.entries[org_id] = (key, merged)
        self.changed = True

    def retain(self, org_ids: Iterable[str]) -> None:
        """Forget orgs that are gone (deleted or archived since)."""
        live = set(org_ids)
        kept = {o: e for o, e in self.entries.items() if o in live}
        self.changed |= len(kept) != len(self.entries)
        self.entries = kept

    def save(self, path: Path) -> None:
        """Replace the memo file whole (blocking). A failure only costs the next start time."""
        body = {
            "format": FORMAT,
            "code": _code_version(),
            "orgs": {o: {"key": list(k), "values": v} for o, (k, v) in self.entries.items()},
        }
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.unlink(missing_ok=True)
            private_file(tmp)  # 0600, as every file of the data directory
            tmp.write_text(json.dumps(body, separators=(",", ":")))
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError) as exc:  # TypeError: an answer JSON cannot hold
            log.warning("tenant scan memo %s not saved (%s)", path, exc)
            tmp.unlink(missing_ok=True)


def _as_read(value: Any) -> Any:
    """JSON turns a reader's tuple into a list; give readers back the shape they returned."""
    return tuple(value) if isinstance(value, list) else value
