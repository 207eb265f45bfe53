"""Markdown that user text cannot break out of: fences and inline escapes (CommonMark).

A fenced block ends at a line of at least as many backticks as opened it, so a
fence longer than the longest backtick run in the text can never be closed by
that text (CommonMark 0.31, "Fenced code blocks"). Inside a fence nothing is
markup, HTML included. Inline text (titles, names, field values) is escaped
instead: every character that can start markup inside a line gets a backslash
(the callers never put user text at the start of a line, where `#`, `-` or `>`
would matter), and line breaks become spaces, so a title cannot open a link,
emphasis, a code span, a table cell, an entity or an HTML tag.
"""

from __future__ import annotations

import re

_BACKTICK_RUNS = re.compile(r"`+")
# CommonMark lets any ASCII punctuation be backslash-escaped; these start markup mid-line.
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def fence(text: str, info: str = "") -> str:
    """`text` as a fenced block that no backticks inside it can close."""
    longest = max((len(run) for run in _BACKTICK_RUNS.findall(text)), default=0)
    ticks = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{ticks}{info}\n{body}{ticks}"


def inline(text: str | None) -> str:
    """One line of user text, inert as Markdown (no markup, no HTML, no line breaks)."""
    if not text:
        return ""
    return _INLINE_SPECIAL.sub(r"\\\1", _LINE_BREAKS.sub(" ", text))
