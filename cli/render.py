"""A box table for a terminal with the standard library alone (the fast read path's).

Draws what `cli/context.py` `print_table` draws with rich on a terminal (rich's default
`HEAVY_HEAD` box, a cell padding of one, bold headers, an italic centred title, one
line per row cut with "…"), byte for byte when the table fits the width (a test holds
it to rich). Importing rich and drawing 50 rows cost ~150 ms on this box; this, ~1 ms
(docs/offline.md "local commands").

Where it departs from rich, on purpose (docs/cli.md "The fast read path"):
- too wide a table shrinks its long columns first, the widest first (rich's own rule
  for wrapping columns), and the short ones (key, status, ...) only when that is not
  enough; rich cuts no-wrap columns evenly, so on an 80-column terminal the key,
  status, priority and type columns of `issue list` shrank to nothing;
- cell text is shown literally: rich reads `[...]` as markup (a title "[api] crash"
  lost "[api]", "a [/] b" made the command fail) and passes escape sequences through;
  here tabs and line breaks become spaces and other control characters are dropped.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from typing import Any

#: HEAVY_HEAD: top, header, header rule, rows, bottom (left, fill, middle, right).
_TOP, _HEAD, _RULE, _ROW, _BOTTOM = "┏━┳┓", "┃ ┃┃", "┡━╇┩", "│ ││", "└─┴┘"
_BOLD, _ITALIC, _RESET = "\x1b[1m", "\x1b[3m", "\x1b[0m"
_CONTROLS = {n: None for n in (*range(32), *range(127, 160))} | {9: " ", 10: " ", 13: " "}


def terminal_width() -> int:
    """$COLUMNS, else the width of the first standard stream that is a terminal, else 80
    (rich's order; a terminal that reports no size counts as 80 wide, as in rich)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except OSError:
            continue
    return 80


def styled() -> bool:
    """Bold and italic on a terminal that shows them, unless NO_COLOR is set."""
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM") not in ("dumb", "unknown")


def cell_len(text: str) -> int:
    """Columns the text takes on a terminal (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    return sum(_width(char) for char in text)


def _width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _fit(text: str, width: int) -> str:
    """`text` padded or cut (with "…") to exactly `width` columns."""
    size = cell_len(text)
    if size <= width:
        return text + " " * (width - size)
    if width <= 0:
        return ""
    kept, used = [], 0
    for char in text:
        step = _width(char)
        if used + step > width - 1:
            break
        kept.append(char)
        used += step
    return "".join(kept) + " " * (width - 1 - used) + "…"


def _wrap(text: str, width: int) -> list[str]:
    """Words in lines of at most `width` columns (a longer word is cut), as rich wraps a
    title wider than its table."""
    lines: list[str] = []
    for word in text.split():
        if lines and cell_len(lines[-1]) + 1 + cell_len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word if cell_len(word) <= width else _fit(word, width))
    return lines or [""]


def _shrink(widths: list[int], room: int, floor: int = 14) -> list[int]:
    """Fit the columns into `room`: the long ones (wider than `floor`) give way first,
    the widest first (rich's rule for columns that may wrap), down to `floor`, then down to
    3; only then the short ones (key, status, priority, type) are cut too."""
    widths = list(widths)
    long = [w > floor for w in widths]
    for low, may in ((floor, long), (3, long), (1, [True] * len(widths))):
        while sum(widths) > room:
            candidates = [w for w, ok in zip(widths, may, strict=True) if ok and w > low]
            if not candidates:
                break
            top = max(candidates)
            second = max([low, *(w for w in candidates if w != top)])
            widest = [n for n, w in enumerate(widths) if w == top and may[n]]
            cut = min(sum(widths) - room, (top - second) * len(widest))
            for position, n in enumerate(widest):  # spread the cut, the earlier ones first
                widths[n] -= cut // len(widest) + (1 if position < cut % len(widest) else 0)
    return widths


def table(rows: list[list[str]], columns: list[str], title: str | None = None, *,
          width: int, bold: bool) -> list[str]:  # fmt: skip
    """The table's lines for a terminal `width` columns wide."""
    head = [column.translate(_CONTROLS) for column in columns]
    body = [[cell.translate(_CONTROLS) for cell in row] for row in rows]
    room = max(width - len(columns) - 1, 0)  # the borders take one column each, plus one
    widths = [min(max(cell_len(c) for c in [h, *(row[n] for row in body)]) + 2, room)
              for n, h in enumerate(head)]  # fmt: skip
    widths = [w or 1 for w in widths]
    if sum(widths) > room:
        widths = _shrink(widths, room)

    def rule(box: str) -> str:
        return box[0] + box[2].join(box[1] * w for w in widths) + box[3]

    def line(cells: list[str], box: str, emphasis: str = "") -> str:
        parts = []
        for text, w in zip(cells, widths, strict=True):
            inner = _fit(text, w - 2)
            if not emphasis:
                parts.append(f" {inner} " if w >= 2 else " " * w)
            elif w >= 2:
                pad = f"{emphasis} {_RESET}"
                parts.append(f"{pad}{emphasis}{inner}{_RESET}{pad}" if inner else pad * 2)
            else:
                parts.append(f"{emphasis}{' ' * w}{_RESET}" if w else "")
        return box[0] + box[2].join(parts) + box[3]

    lines = []
    if title:
        full = sum(widths) + len(widths) + 1
        for text in _wrap(title.translate(_CONTROLS), full):
            left = (full - cell_len(text)) // 2
            centred = " " * left + text + " " * (full - left - cell_len(text))
            lines.append(f"{_ITALIC}{centred}{_RESET}" if bold else centred)
    lines += [rule(_TOP), line(head, _HEAD, _BOLD if bold else ""), rule(_RULE)]
    lines += [line(row, _ROW) for row in body]
    lines.append(rule(_BOTTOM))
    return lines


def boxes_fit() -> bool:
    """Whether stdout can show box characters (rich falls back to ASCII where not)."""
    return (sys.stdout.encoding or "").lower().startswith("utf")


def table_lines(
    rows: list[dict[str, Any]], columns: list[str], title: str | None = None
) -> list[str]:
    """What a command prints for `rows`: a box table on a terminal; piped, tab-separated
    lines with a header first, as `gh` does (easy to `cut`/`awk`)."""
    cells = [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    if sys.stdout.isatty():
        return table(cells, columns, title, width=terminal_width(), bold=styled())
    flat = str.maketrans("\t\r\n", "   ")
    lines = [f"# {title}".translate(flat)] if title else []
    return lines + ["\t".join(cell.translate(flat) for cell in line) for line in [columns, *cells]]
