"""The C heap of a server process: keep freed memory in the thread arenas instead of
handing it back to the kernel after every tenant close.

A tenant open parses the whole schema into ~200 KiB of small allocations on whichever
thread opens it, and an eviction frees them again. glibc gives a thread arena's free
top back to the kernel as soon as it exceeds `M_TRIM_THRESHOLD` (128 KiB by default)
and grows it again in small steps, so under tenant churn each miss paid ~3 `mprotect`
calls and ~6 extra page faults, each a trip into the kernel and, with several
threads, a TLB shootdown on the other core. Measured here (32 threads opening tenant
files in an LRU over 10,000, cap 1,024; `docs/tenants.md`, "Ninth session"): page
faults 8.4 -> 2.4 per miss and `mprotect` calls 31,000 -> 130 per 10,000 misses.

The price is memory a thread arena keeps after a spike: at most `TOP_PAD` above what is
in use, per arena (glibc makes up to eight per core), and never more than what was
really touched. An operator who sets glibc's own `MALLOC_TRIM_THRESHOLD_` or
`MALLOC_TOP_PAD_` keeps those: this changes nothing then.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
TRIM_THRESHOLD = 256 * 1024 * 1024  # free top of an arena kept up to this before a trim
TOP_PAD = 64 * 1024 * 1024  # grow (and trim back to) this much above what is in use
OPERATOR_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory() -> bool:
    """Set glibc's trim threshold and top pad for this process; True if both took.

    Does nothing (False) off glibc, or when the operator set either in the environment.
    """
    if any(name in os.environ for name in OPERATOR_SETTINGS):
        return False
    try:  # the process's own symbols: no `find_library` (it runs ldconfig) at start-up
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    done = done and bool(mallopt(_M_TOP_PAD, TOP_PAD) == 1)
    if not done:
        log.info("the C heap keeps its default trimming (mallopt refused)")
    return done
