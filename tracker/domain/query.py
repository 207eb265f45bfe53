"""The search query language (SPEC §5): text in, a typed `Query` tree out.

Pure and total: `parse_query` returns a `Query` or raises `QuerySyntaxError` with the
0-based offset of the fault. The storage compiler maps the tree to SQL, and
`tracker.domain.fts.build_match` turns text terms into quoted-only FTS5 syntax.

- Control characters (Unicode Cc but tab/CR/LF) and lone surrogates are rejected,
  not stripped, so error positions stay true to what the user typed.
- Quoted strings have no escapes; a quote in the middle of a word is an error.
- Known field names and the keywords of `is:`, `has:`, `sort:` are case-insensitive
  (stored lower-case); other values keep their case. A quoted field name is always
  a custom field (`"Story points":3`).
- Date fields yield only `Comparison` or `Range`: a bare absolute date means that
  UTC day (`Range(d, d)`), a bare relative one the window between it and now.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, cast

from tracker.domain.bounds import ISSUE_NUMBER_DIGITS
from tracker.errors import QuerySyntaxError

MAX_QUERY_LENGTH = 1000
MAX_TERMS = 16  # docs/reliability.md §3.2: each FTS term costs, and `a* OR e* ...` took 747 ms
MAX_LIST_VALUES = 50
MAX_RELATIVE_DIGITS = 5  # 99999 weeks (~1900 years) still fits in a datetime either way from now

DATE_FIELDS = frozenset({"created", "updated", "resolved", "due"})
TEXT_FIELDS = frozenset(
    {"status", "priority", "type", "assignee", "reporter", "tag", "sprint", "project", "parent"}
)
KEYWORD_FIELDS = {
    "is": frozenset({"open", "closed"}),
    "has": frozenset({"assignee", "sprint", "due"}),
}
KNOWN_FIELDS = DATE_FIELDS | TEXT_FIELDS | frozenset(KEYWORD_FIELDS) | {"sort"}
# Default direction per sort key: newest / most relevant / highest priority first,
# but issue numbers read naturally ascending.
SORT_DESCENDING_BY_DEFAULT = {"number": False} | dict.fromkeys(
    ("updated", "created", "priority", "relevance"), True
)

TermKind = Literal["word", "phrase", "prefix"]
CompareOp = Literal[">", "<", ">=", "<="]
DateUnit = Literal["h", "d", "w"]
_OPS: tuple[CompareOp, ...] = (">=", "<=", ">", "<")  # two-character operators first
_UNIT_NAMES = {"h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsoluteDate:
    """A UTC instant; `date_only` marks a whole day (`2026-01-31`) rather than a moment."""

    value: datetime
    date_only: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RelativeDate:
    """An offset from "now", resolved by the compiler: `2w` is -2 weeks, `+3d` is +3 days."""

    amount: int
    unit: DateUnit


DateValue = AbsoluteDate | RelativeDate


@dataclass(frozen=True, slots=True, kw_only=True)
class Exact:
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """`>x`; on date fields `value` is a DateValue, on custom fields the raw string."""

    op: CompareOp
    value: DateValue | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    """`lo..hi`, inclusive at both ends (a date-only `hi` includes that whole day)."""

    lo: DateValue | str
    hi: DateValue | str


Value = Exact | Comparison | Range


@dataclass(frozen=True, slots=True, kw_only=True)
class TextTerm:
    """A full-text term; `position` is where it starts in the query (its `-` if negated)."""

    text: str
    kind: TermKind
    negated: bool = False
    position: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldFilter:
    """`field:v1,v2` (any of the values); `custom` means not one of KNOWN_FIELDS."""

    field: str
    values: tuple[Value, ...]
    custom: bool = False
    negated: bool = False
    position: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SortKey:
    key: str
    descending: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """Terms and filters are ANDed; an empty Query matches everything."""

    terms: tuple[TextTerm, ...] = ()
    filters: tuple[FieldFilter, ...] = ()
    sorts: tuple[SortKey, ...] = ()


def is_control_char(ch: str) -> bool:
    """True for characters the query language (and FTS5) must never see."""
    category = unicodedata.category(ch)
    return (category == "Cc" and ch not in "\t\n\r") or category == "Cs"


def parse_query(text: str) -> Query:
    """Parse one search query; raises QuerySyntaxError naming the position of the fault."""
    _check_characters(text)
    cursor = _Cursor(text)
    terms: list[TextTerm] = []
    filters: list[FieldFilter] = []
    sorts: list[SortKey] = []
    while cursor.skip_space():
        item = _parse_item(cursor)
        if isinstance(item, TextTerm):
            terms.append(item)
        elif isinstance(item, FieldFilter):
            filters.append(item)
        else:
            sorts.extend(item)
    if len(terms) > MAX_TERMS:
        raise QuerySyntaxError(
            f"too many search terms (max {MAX_TERMS})", terms[MAX_TERMS].position
        )
    return Query(terms=tuple(terms), filters=tuple(filters), sorts=tuple(sorts))


def parse_date(text: str, position: int = 0) -> DateValue:
    """One date: `YYYY-MM-DD`, an ISO datetime with a zone (`...T10:00:00Z`), or `7d`/`+2w`/`12h`.

    Public so the compiler can read custom date fields, whose values stay strings here.
    """
    value = _relative_date(text) or _absolute_date(text)
    if value is None:
        raise QuerySyntaxError(f"bad date '{text}'" if text else "expected a date", position)
    return value


def resolve_date(value: DateValue, now: datetime) -> datetime:
    """The instant a date value starts at; `now` should be an aware UTC datetime."""
    if isinstance(value, AbsoluteDate):
        return value.value
    return now + timedelta(**{_UNIT_NAMES[value.unit]: value.amount})


def date_bounds(value: DateValue, now: datetime) -> tuple[datetime, datetime]:
    """The half-open span [start, end) a date value covers, so one rule fits days and instants.

    `>v` is `field >= end`, `>=v` is `field >= start`, `<v` is `field < start`, `<=v` is
    `field < end`, and `a..b` is `start(a) <= field < end(b)`. A date-only value spans its
    UTC day; an instant spans one microsecond, the smallest step a datetime has.
    """
    start = resolve_date(value, now)
    whole_day = isinstance(value, AbsoluteDate) and value.date_only
    return start, start + (timedelta(days=1) if whole_day else timedelta(microseconds=1))


class _Cursor:
    """Walks the query text; `pos` is always the offset an error should report."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_boundary(self) -> bool:
        ch = self.peek()
        return ch == "" or ch.isspace()

    def skip_space(self) -> bool:
        """Skip whitespace; False once the text is used up."""
        while self.peek().isspace():
            self.pos += 1
        return self.pos < len(self.text)

    def take_bare(self, stops: str) -> str:
        """Read up to whitespace, the end, or any character in `stops`."""
        start = self.pos
        while not self.at_boundary() and self.peek() not in stops:
            self.pos += 1
        return self.text[start : self.pos]

    def take_quoted(self) -> str:
        """Read a `"..."` string (the cursor is on the opening quote) and return its inside."""
        opening = self.pos
        closing = self.text.find('"', opening + 1)
        if closing < 0:
            raise QuerySyntaxError("unterminated quote", opening)
        self.pos = closing + 1
        return self.text[opening + 1 : closing]

    def expect_boundary(self) -> None:
        """An item must end at whitespace; `"a"b` and `a"b"` are mistakes worth naming."""
        if self.at_boundary():
            return
        if self.peek() == '"':
            raise QuerySyntaxError("unexpected quote", self.pos)
        raise QuerySyntaxError("expected a space after the closing quote", self.pos)


@dataclass(frozen=True, slots=True)
class _RawValue:
    text: str
    quoted: bool
    position: int  # of the value's first character, inside the quotes if quoted


def _check_characters(text: str) -> None:
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"query too long (max {MAX_QUERY_LENGTH} characters)", MAX_QUERY_LENGTH
        )
    for index, ch in enumerate(text):
        if is_control_char(ch):
            raise QuerySyntaxError(f"control character U+{ord(ch):04X} not allowed", index)


def _parse_item(cursor: _Cursor) -> TextTerm | FieldFilter | list[SortKey]:
    """One whitespace-separated item: `[-]word`, `[-]"phrase"` or `[-]field:values`."""
    start = cursor.pos
    negated = cursor.peek() == "-"
    if negated:
        cursor.pos += 1
        if cursor.at_boundary():
            raise QuerySyntaxError("expected a term after '-'", start)
    if cursor.peek() == '"':
        text = cursor.take_quoted()
        if cursor.peek() == ":":
            return _parse_filter(cursor, text, True, negated, start)
        cursor.expect_boundary()
        if not text.strip():
            raise QuerySyntaxError("empty phrase", start + negated)
        return TextTerm(text=text, kind="phrase", negated=negated, position=start)
    text = cursor.take_bare(':"')
    if cursor.peek() == ":":
        return _parse_filter(cursor, text, False, negated, start)
    cursor.expect_boundary()
    return _word(text, negated, start)


def _word(text: str, negated: bool, start: int) -> TextTerm:
    if not text.endswith("*"):
        return TextTerm(text=text, kind="word", negated=negated, position=start)
    stem = text[:-1]
    # Checked on the last two characters because FTS5 applies `*` to the last token
    # only: `e-m*` would still be a one-letter prefix, the slowest query there is.
    if len(stem) < 2 or not stem[-2:].isalnum():
        star = start + negated + len(stem)
        raise QuerySyntaxError("a prefix needs at least 2 letters or digits before '*'", star)
    return TextTerm(text=stem, kind="prefix", negated=negated, position=start)


def _parse_filter(
    cursor: _Cursor, name: str, quoted: bool, negated: bool, start: int
) -> FieldFilter | list[SortKey]:
    """Parse the values after `name:` (the cursor is on the colon) and type them by field."""
    label = cursor.text[start + negated : cursor.pos + 1]
    if not name.strip():
        raise QuerySyntaxError("expected a field name before ':'", start + negated)
    cursor.pos += 1
    custom = quoted or name.lower() not in KNOWN_FIELDS
    field = name if custom else name.lower()
    raw_values = _take_values(cursor, label)
    if field == "sort":
        if negated:
            raise QuerySyntaxError("sort: cannot be negated", start)
        return [_sort_key(raw) for raw in raw_values]
    values = tuple(_typed_value(field, custom, raw) for raw in raw_values)
    return FieldFilter(field=field, values=values, custom=custom, negated=negated, position=start)


def _take_values(cursor: _Cursor, label: str) -> list[_RawValue]:
    """Read `v1,"v 2",v3` up to whitespace."""
    values: list[_RawValue] = []
    after = label
    while True:
        position = cursor.pos
        if cursor.peek() == '"':
            text = cursor.take_quoted()
            if not text.strip():
                raise QuerySyntaxError("empty value", position)
            values.append(_RawValue(text, True, position + 1))
        else:
            text = cursor.take_bare(',"')
            if not text:
                raise QuerySyntaxError(f"expected a value after '{after}'", position)
            values.append(_RawValue(text, False, position))
        if len(values) > MAX_LIST_VALUES:
            raise QuerySyntaxError(f"too many values (max {MAX_LIST_VALUES})", position)
        if cursor.peek() != ",":
            cursor.expect_boundary()
            return values
        cursor.pos += 1
        after = ","


def _sort_key(raw: _RawValue) -> SortKey:
    key, _, direction = raw.text.lower().partition("-")
    if key not in SORT_DESCENDING_BY_DEFAULT:
        raise QuerySyntaxError(f"unknown sort key '{raw.text[: len(key)]}'", raw.position)
    if direction not in ("", "asc", "desc"):
        direction_at = raw.position + len(key) + 1
        raise QuerySyntaxError(f"unknown sort direction '{direction}'", direction_at)
    descending = SORT_DESCENDING_BY_DEFAULT[key] if not direction else direction == "desc"
    return SortKey(key=key, descending=descending)


def _typed_value(field: str, custom: bool, raw: _RawValue) -> Value:
    if field in DATE_FIELDS and not custom:
        return _date_filter_value(raw.text, raw.position)
    if field in KEYWORD_FIELDS and not custom:
        if raw.text.lower() not in KEYWORD_FIELDS[field]:
            raise QuerySyntaxError(f"unknown {field}: value '{raw.text}'", raw.position)
        return Exact(value=raw.text.lower())
    if raw.quoted:
        return Exact(value=raw.text)
    if custom:
        return _custom_value(raw.text, raw.position)
    if raw.text.startswith(("<", ">")):
        raise QuerySyntaxError(f"'{field}:' does not take comparisons", raw.position)
    if field == "parent" and not _is_issue_ref(raw.text):
        raise QuerySyntaxError(f"bad parent '{raw.text}' (expected KEY-N or N)", raw.position)
    return Exact(value=raw.text)


def _date_filter_value(text: str, position: int) -> Comparison | Range:
    """`>v`, `a..b`, or a bare date (its whole day, or the window between it and now)."""
    op = _leading_op(text)
    if op:
        return Comparison(op=op, value=parse_date(text[len(op) :], position + len(op)))
    if ".." in text:
        lo, _, hi = text.partition("..")
        return Range(lo=parse_date(lo, position), hi=parse_date(hi, position + len(lo) + 2))
    value = parse_date(text, position)
    if isinstance(value, AbsoluteDate):
        return Range(lo=value, hi=value)
    now = RelativeDate(amount=0, unit=value.unit)
    return Range(lo=value, hi=now) if value.amount <= 0 else Range(lo=now, hi=value)


def _custom_value(text: str, position: int) -> Value:
    """Custom fields keep strings; the compiler knows each field's type and may parse_date."""
    op = _leading_op(text)
    if op:
        if len(text) == len(op):
            raise QuerySyntaxError(f"expected a value after '{op}'", position + len(op))
        return Comparison(op=op, value=text[len(op) :])
    lo, dots, hi = text.partition("..")
    if dots:
        if not lo or not hi:
            raise QuerySyntaxError("expected a value on both sides of '..'", position)
        return Range(lo=lo, hi=hi)
    return Exact(value=text)


def _leading_op(text: str) -> CompareOp | None:
    return next((op for op in _OPS if text.startswith(op)), None)


def _is_issue_ref(text: str) -> bool:
    """`KEY-N` or `N`, N of at most 15 digits (bounds.ISSUE_NUMBER_DIGITS): SQLite's
    integers stop at 2**63, and a longer number names no issue anyway."""
    key, dash, number = text.rpartition("-")
    key_ok = not dash or (key.replace("_", "").isalnum() and key.isascii())
    number_ok = number.isascii() and number.isdigit() and len(number) <= ISSUE_NUMBER_DIGITS
    return key_ok and number_ok


def _relative_date(text: str) -> RelativeDate | None:
    sign = text[:1] if text[:1] in ("+", "-") else ""
    digits, unit = text[len(sign) : -1], text[-1:]
    digits_ok = digits.isascii() and digits.isdigit() and len(digits) <= MAX_RELATIVE_DIGITS
    if unit not in _UNIT_NAMES or not digits_ok:
        return None
    amount = int(digits)
    return RelativeDate(amount=amount if sign == "+" else -amount, unit=cast(DateUnit, unit))


def _absolute_date(text: str) -> AbsoluteDate | None:
    """`YYYY-MM-DD` or an ISO datetime with a zone; years 2-9998 so arithmetic cannot overflow."""
    if not _looks_like_day(text[:10]) or (len(text) > 10 and text[10] not in "Tt"):
        return None
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), UTC)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                return None  # a zone-less time is ambiguous; SPEC §1 times carry Z
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if not 1 < moment.year < 9999:
        return None
    return AbsoluteDate(value=moment, date_only=len(text) == 10)


def _looks_like_day(text: str) -> bool:
    """Shape check first: fromisoformat also takes `20260131` and week dates we do not offer."""
    digits = text[:4] + text[5:7] + text[8:]
    return len(text) == 10 and text[4] == text[7] == "-" and digits.isascii() and digits.isdigit()
