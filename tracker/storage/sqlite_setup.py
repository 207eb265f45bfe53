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
import threading

log = logging.getLogger(__name__)

KEEP_SETTING = "RHYTHM_SQLITE_MEMORY_STATISTICS"
_SQLITE_OK = 0
_SQLITE_CONFIG_MEMSTATUS = 9

_lock = threading.Lock()
_statistics_off = False


def _library() -> ctypes.CDLL | None:
    """SQLite as the `sqlite3` module links it (its extension's own symbol lookup)."""
    try:
        import _sqlite3

        lib = ctypes.CDLL(_sqlite3.__file__)
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        for name in ("sqlite3_shutdown", "sqlite3_initialize", "sqlite3_config"):
            getattr(lib, name).restype = ctypes.c_int
    except (ImportError, OSError, AttributeError):
        return None
    return lib


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
