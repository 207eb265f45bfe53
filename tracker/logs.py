"""Logging set-up for `rhythm serve`: text lines (default) or JSON lines.

RHYTHM_LOG_FORMAT=json writes one JSON object per line: `ts` (UTC, ISO 8601), `level`,
`logger`, `msg`, plus the structured `fields` a record carries (the access log and
the slow-request / slow-query logs pass theirs as `extra={"fields": {...}}`), and
`exc` with the traceback when there is one. Text keeps the classic line.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from tracker.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a record's `fields` join the base members."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(settings: Settings) -> None:
    """Install one stderr handler on the root logger with the configured format."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
