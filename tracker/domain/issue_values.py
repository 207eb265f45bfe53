"""The closed sets of an issue's type and priority, apart from the pydantic models so the
query language's SQL (tracker.storage.search_filters) and the CLI's fast read path
(cli/fast.py) use them without importing pydantic (start-up time: docs/cli.md)."""

from __future__ import annotations

ISSUE_TYPES: tuple[str, ...] = ("bug", "feature", "task", "improvement", "epic", "story")
PRIORITIES: tuple[str, ...] = ("critical", "major", "normal", "minor")
