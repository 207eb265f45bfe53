"""Readiness checks that touch the disk (run off the event loop by the caller)."""

from __future__ import annotations

import os

from tracker.settings import Settings
from tracker.storage.faults import free_bytes


def disk_checks(settings: Settings) -> dict[str, str]:
    """`data_dir`: a probe file can be written; `disk`: free space >= RHYTHM_MIN_FREE_MB."""
    checks: dict[str, str] = {}
    probe = settings.data_dir / f".ready-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
        checks["data_dir"] = "ok"
    except OSError as exc:
        checks["data_dir"] = f"error: not writable ({exc.strerror})"
    try:
        free_mb = free_bytes(settings.data_dir) // (1024 * 1024)
    except OSError as exc:
        checks["disk"] = f"error: {exc.strerror}"
    else:
        checks["disk"] = (
            "ok"
            if free_mb >= settings.min_free_mb
            else f"error: {free_mb} MB free, below RHYTHM_MIN_FREE_MB={settings.min_free_mb}"
        )
    return checks
