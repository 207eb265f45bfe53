"""The server keeps freed C heap memory instead of trimming it after every tenant close."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

PROBE = """
import ctypes, json, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
tuned = None
if sys.argv[1] == "tuned":
    from tracker.storage.heap import keep_freed_memory
    tuned = keep_freed_memory()
blocks = [libc.malloc(1024) for _ in range(8192)]  # 8 MiB of small blocks, like a schema
for block in reversed(blocks):
    libc.free(block)
print(json.dumps({"tuned": tuned, "keepcost": libc.mallinfo2().keepcost}))
"""


def _probe(mode: str, **env: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def _has_mallinfo2() -> bool:
    try:
        ctypes.CDLL(None).mallinfo2  # noqa: B018
    except (OSError, AttributeError):
        return False
    return True


pytestmark = pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc >= 2.33")


def test_freed_memory_stays_in_the_heap_once_tuned() -> None:
    """By default glibc hands the freed top back at once; tuned, it keeps it for the
    next tenant open (no re-growth, no page faults)."""
    default = _probe("default")
    tuned = _probe("tuned")
    assert tuned["tuned"] is True
    assert int(str(default["keepcost"])) < 1024 * 1024
    assert int(str(tuned["keepcost"])) >= 7 * 1024 * 1024


def test_an_operators_own_glibc_setting_is_left_alone() -> None:
    probe = _probe("tuned", MALLOC_TOP_PAD_="0")
    assert probe["tuned"] is False
    assert int(str(probe["keepcost"])) < 1024 * 1024
