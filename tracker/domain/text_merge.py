"""Line-based 3-way merge of offline text edits (descriptions, comments), docs/sync.md.

`merge3` (the Bazaar/Breezy merge, pure Python) finds the hunks; overlapping ones
are never published with conflict markers: the caller keeps the current text and
hands the writer's text back (`kept_both`).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import merge3

Outcome = Literal["applied", "noop", "merged", "kept_both"]


class Merged(NamedTuple):
    outcome: Outcome
    #: the text to store (for kept_both: the current one, unchanged)
    text: str


def merge_text(base: str, current: str, mine: str) -> Merged:
    """What to store when `mine` was written over `base` and the server now has `current`."""
    if current == base:
        return Merged("noop" if mine == current else "applied", mine)
    if current == mine:
        return Merged("noop", current)
    merger = merge3.Merge3(
        base.splitlines(keepends=True),
        current.splitlines(keepends=True),
        mine.splitlines(keepends=True),
    )
    out: list[str] = []
    for group in merger.merge_groups():
        kind = group[0]
        if kind == "conflict":
            return Merged("kept_both", current)
        out.extend(group[1])
    return Merged("merged", "".join(out))


MARKERS = ("<<<<<<< ", "||||||| ", "=======", ">>>>>>> ")


def marked(base: str, current: str, mine: str) -> str:
    """The three-way merge with conflict markers (server's text, the base, yours): what a
    person finishes by hand in `rhythm issue resolve`; never stored on the server."""
    lines = [text.splitlines(keepends=True) for text in (base, current, mine)]
    for part in lines:  # a last line without its newline would glue onto a marker
        if part and not part[-1].endswith("\n"):
            part[-1] += "\n"
    merger = merge3.Merge3(lines[0], lines[1], lines[2])
    return "".join(merger.merge_lines(name_a="server", name_b="yours", name_base="base",
                                      base_marker="|||||||"))  # fmt: skip


def has_markers(text: str) -> bool:
    """Whether a conflict marker line is still in `text` (an unfinished merge)."""
    return any(line.startswith(MARKERS) for line in text.splitlines())
