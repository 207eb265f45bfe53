"""Process-wide SQLite configuration, made once before the process's first connection.

SQLite keeps memory statistics by default (`SQLITE_CONFIG_MEMSTATUS`): every
allocation and free takes one process-wide mutex to update them. Opening a tenant
parses its whole schema, thousands of small allocations, and the server opens tenants
on several threads at once, so under many tenants those threads queue on that one
mutex. Measured here (4-8 threads opening tenant files, SQLite 3.40.1): 1,240-1,900 µs
of CPU per open with the statistics, 735-795 µs without, and twice the opens per
second; one thread alone gains ~10 %. Rhythm reads none of the statistics (no
`soft_heap_limit`, no `sqlite3_memory_used` in /metrics), so the server turns them off
(docs/tenants.md, "Seventh session").

Python's `sqlite3` module has no call for it and has already initialised SQLite when
imported, so this goes through ctypes: `sqlite3_shutdown`, `sqlite3_config`,
`sqlite3_initialize`. Shutting SQLite down is only safe with nothing of it alive, so
it is done only while `sqlite3_memory_used()` is 0 (with statistics on, that counts
every live connection and statement), once per process, from the thread that starts
the server, before anything opens a database. Anything unexpected (another SQLite
copy, a missing symbol, a live connection) leaves SQLite as it was.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sqlite3
import sys
import threading
from typing import Any, TypeVar

log = logging.getLogger(__name__)

KEEP_SETTING = "RHYTHM_SQLITE_MEMORY_STATISTICS"
_SQLITE_OK = 0
_SQLITE_CONFIG_MEMSTATUS = 9

_Lib = TypeVar("_Lib", bound=ctypes.CDLL)
_lock = threading.Lock()
_statistics_off = False


#: A C function's (argument types, result type); None leaves ctypes' defaults.
Signature = tuple[list[Any] | None, Any]


def load_sqlite(loader: type[_Lib], signatures: dict[str, Signature]) -> _Lib | None:
    """SQLite as the `sqlite3` module links it (its extension's own symbol lookup), with
    the named functions typed; None if it cannot be reached (another build, a symbol
    missing). `ctypes.CDLL` releases the GIL around each call, `ctypes.PyDLL` keeps it."""
    try:
        import _sqlite3

        lib = loader(_sqlite3.__file__)
        for name, (argtypes, restype) in signatures.items():
            function = getattr(lib, name)
            if argtypes is not None:
                function.argtypes = argtypes
            function.restype = restype
    except (ImportError, OSError, AttributeError):
        return None
    return lib


def _library() -> ctypes.CDLL | None:
    return load_sqlite(
        ctypes.CDLL,
        {
            "sqlite3_memory_used": (None, ctypes.c_int64),
            "sqlite3_shutdown": (None, ctypes.c_int),
            "sqlite3_initialize": (None, ctypes.c_int),
            "sqlite3_config": (None, ctypes.c_int),
        },
    )


def stop_memory_statistics() -> bool:
    """Turn SQLite's memory statistics off for this process; True if they are off now.

    Call it at process start, before any database is opened. Does nothing (False) when
    SQLite already holds memory, i.e. a connection may be open.
    """
    global _statistics_off
    with _lock:
        if _statistics_off:
            return True
        lib = _library()
        if lib is None:
            log.info("SQLite memory statistics left on: the library is not reachable")
            return False
        if lib.sqlite3_memory_used() != 0:
            log.warning("SQLite memory statistics left on: SQLite is already in use")
            return False
        if lib.sqlite3_shutdown() != _SQLITE_OK:
            return False
        configured = lib.sqlite3_config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0))
        if lib.sqlite3_initialize() != _SQLITE_OK:  # opens would initialise it anyway
            log.error("SQLite did not initialise again after its configuration")
        _statistics_off = bool(configured == _SQLITE_OK)
        if _statistics_off:
            log.info("SQLite memory statistics off (%s=true keeps them)", KEEP_SETTING)
        return _statistics_off


# --- per connection: keep `-wal` and `-shm` between opens -------------------------
#
# SQLite creates a database's `-wal` and `-shm` files when a connection first reads
# it and deletes them when the last connection closes. Under many tenants every
# LRU miss pays both (ext4 allocates two inodes on open and frees them on close:
# ~15 % of the server's CPU samples in a uniform spread over 10,000 orgs), and
# threads opening tenants at once contend in the file system for them. Persistent
# WAL mode (`SQLITE_FCNTL_PERSIST_WAL`) keeps both files: a clean close still
# checkpoints everything and, with `journal_size_limit` set, truncates `-wal` to
# zero bytes, so nothing is left in it; `-shm` (32 KiB) stays and is rebuilt by the
# next first opener. Measured (4 threads cycling open/read/close over 400 tenant
# copies): 1,680-2,082 µs of CPU per cycle without, 871-1,119 µs with
# (docs/tenants.md, "Eighth session").
#
# Python's `sqlite3` has no `sqlite3_file_control`, so this reads the connection's
# `sqlite3 *` from the CPython object (its first field after the object header, in
# every CPython from 3.11 to 3.14) and checks it by asking SQLite for the file name
# of that handle before using it. Anything unexpected leaves the connection as it is.

_SQLITE_FCNTL_PERSIST_WAL = 10
_HANDLE_LAYOUT_KNOWN = sys.implementation.name == "cpython" and (3, 11) <= sys.version_info[:2] < (
    3,
    15,
)


def _gil_library() -> ctypes.PyDLL | None:
    """These calls take microseconds, so they keep the GIL (`PyDLL`): each release and
    retake queues behind the event loop under load."""
    named = [ctypes.c_void_p, ctypes.c_char_p]  # a connection and a database name
    return load_sqlite(
        ctypes.PyDLL,
        {
            "sqlite3_db_filename": (named, ctypes.c_char_p),
            "sqlite3_file_control": ([*named, ctypes.c_int, ctypes.c_void_p], ctypes.c_int),
            "sqlite3_db_readonly": (named, ctypes.c_int),
        },
    )


_GIL_LIB = _gil_library() if _HANDLE_LAYOUT_KNOWN else None


def handles_available() -> bool:
    """Whether `connection_handle` can work in this interpreter at all."""
    return _GIL_LIB is not None


def connection_handle(conn: sqlite3.Connection, path: str) -> int | None:
    """The `sqlite3 *` behind `conn`, if it is the handle of the open file `path`."""
    if _GIL_LIB is None:
        return None
    handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
    if not handle:
        return None
    name = _GIL_LIB.sqlite3_db_filename(handle, b"main")
    if name is None:
        return None
    opened = os.fsdecode(name)  # SQLite's full path name: absolute, symlinks resolved
    if opened != os.path.abspath(path) and opened != os.path.realpath(path):
        return None
    return int(handle)


def keep_wal_files(handle: int) -> bool:
    """Persistent WAL mode for the connection `handle` (see above); True if it took effect.

    Needs `journal_size_limit` >= 0 on the connection, or a clean close leaves the
    checkpointed frames in `-wal` for the next opener to read again."""
    if _GIL_LIB is None:
        return False
    on = ctypes.c_int(1)
    rc = _GIL_LIB.sqlite3_file_control(handle, b"main", _SQLITE_FCNTL_PERSIST_WAL, ctypes.byref(on))
    return bool(rc == _SQLITE_OK)


def opened_read_only(handle: int) -> bool:
    """Whether SQLite opened the main database read-only although read-write was asked.

    It does that silently when the file or its file system is write-protected. With the
    `-wal`/`-shm` files kept beside it, such a connection can even read, so a server
    would cache a tenant that can never write again, not even after the disk is
    writable: the caller refuses it instead (a 503 now, a fresh open next time)."""
    return _GIL_LIB is not None and _GIL_LIB.sqlite3_db_readonly(handle, b"main") == 1


# --- per connection: a script in one GIL release --------------------------------------
#
# `executescript` gives the GIL up and takes it back once per statement. A tenant open
# runs five (four pragmas and the migrations check), and under load every take-back
# waits for the busy event loop to let go, up to the 5 ms switch interval each. Through
# `sqlite3_exec` (`ctypes.CDLL` releases the GIL around the call) the whole script is
# one release. It reports only success: a caller that sees False runs its script again
# through `sqlite3`, which raises the real error (docs/tenants.md, "Ninth session").


def _released_library() -> ctypes.CDLL | None:
    pointer = ctypes.c_void_p
    return load_sqlite(
        ctypes.CDLL,
        {"sqlite3_exec": ([pointer, ctypes.c_char_p, pointer, pointer, pointer], ctypes.c_int)},
    )


_RELEASED_LIB = _released_library() if _HANDLE_LAYOUT_KNOWN else None


def run_script_in_one_release(handle: int, script: str) -> bool:
    """Run `script` (statements without results) on the connection `handle`, the GIL
    released once for all of it; True if every statement succeeded. Only for the thread
    that owns the connection, between statements of its own."""
    if _RELEASED_LIB is None:
        return False
    rc = _RELEASED_LIB.sqlite3_exec(handle, script.encode(), None, None, None)
    return bool(rc == _SQLITE_OK)
