"""Workflow rules that need no I/O: default stages and stage categories."""

from __future__ import annotations

from typing import Literal

StageCategory = Literal["todo", "in_progress", "done"]

#: Every new project starts with these stages (SPEC §6), in this order.
DEFAULT_STAGES: tuple[tuple[str, StageCategory], ...] = (
    ("Open", "todo"),
    ("In Progress", "in_progress"),
    ("Resolved", "done"),
    ("Closed", "done"),
)
