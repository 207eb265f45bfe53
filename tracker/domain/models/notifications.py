"""Watchers: who hears about an issue, and the caller's own choice."""

from __future__ import annotations

from typing import Literal

from tracker.domain.models.base import Output

#: Why someone watches: they reported it, are assigned, commented, or pressed watch.
Reason = Literal["reporter", "assignee", "commenter", "watching"]


class Watch(Output):
    """`GET/PUT/DELETE …/watchers/me`: whether the caller gets email about the issue.

    `reasons` say why they would (even when muted); `choice` is their explicit
    choice (`unwatch` silences the implicit reasons until they watch again)."""

    watching: bool
    reasons: list[Reason]
    choice: Literal["watch", "unwatch"] | None = None


class Watcher(Output):
    id: str
    email: str
    display_name: str
    reasons: list[Reason]
