"""Field filters of the query language -> SQL predicates over `issues i`, with parameters only.

Identifiers come from the constants here, never from the query; every value the
user typed is a bound parameter. A filter with several values matches any of
them; `-field:value` is `NOT coalesce(predicate, 0)`, so an issue that lacks
the field (a NULL predicate) counts as "not that value" instead of vanishing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tracker.domain.emails import normalize_email
from tracker.domain.issue_values import ISSUE_TYPES, PRIORITIES
from tracker.domain.query import (
    Comparison,
    DateValue,
    Exact,
    FieldFilter,
    Range,
    RelativeDate,
    Value,
    date_bounds,
    parse_date,
)
from tracker.errors import QuerySyntaxError

#: A user id no one has: what `me` means to an anonymous caller, or an unknown email.
NOBODY = "\x00nobody"
PRIORITY_RANK = (
    "(CASE i.priority WHEN 'critical' THEN 3 WHEN 'major' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END)"
)
#: Stored dates are `YYYY-MM-DD` (due dates, custom date fields): as instants they start at 00:00Z.
_AS_INSTANT = "({} || 'T00:00:00.000Z')"
_DATE_COLUMNS = {
    "created": "i.created_at",
    "updated": "i.updated_at",
    "resolved": "i.resolved_at",
    "due": _AS_INSTANT.format("i.due_date"),
}


@dataclass(frozen=True)
class FilterContext:
    """What a filter needs besides the query: who asks, what they may see, and when."""

    project_ids: tuple[str, ...]
    user_id: str | None
    emails: Mapping[str, str]  # normalized email -> user id (resolved in the system DB)
    now: datetime


@dataclass
class Sql:
    """A predicate and its parameters, in order."""

    text: str
    args: list[Any] = field(default_factory=list)


def marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def compile_filter(conn: sqlite3.Connection, item: FieldFilter, ctx: FilterContext) -> Sql:
    """One filter of the tree as one predicate (conn: to look up custom field definitions)."""
    sql = _custom(conn, item, ctx) if item.custom else _KNOWN[item.field](item, ctx)
    if item.negated:
        return Sql(f"NOT coalesce({sql.text}, 0)", sql.args)
    return sql


def emails_in(filters: Sequence[FieldFilter]) -> set[str]:
    """Every email the filters name, normalized, to resolve before compiling."""
    found = set()
    for item in filters:
        for value in item.values:
            if isinstance(value, Exact) and "@" in value.value:
                found.add(normalize_email(value.value))
    return found


def _any(parts: list[Sql]) -> Sql:
    if len(parts) == 1:
        return parts[0]
    return Sql("(" + " OR ".join(p.text for p in parts) + ")", [a for p in parts for a in p.args])


def _exact(item: FieldFilter) -> list[str]:
    """The values of a filter the parser only gives Exact values for."""
    return [v.value for v in item.values if isinstance(v, Exact)]


def _choice(item: FieldFilter, allowed: tuple[str, ...]) -> list[str]:
    chosen = [v.lower() for v in _exact(item)]
    for value in chosen:
        if value not in allowed:
            raise QuerySyntaxError(
                f"unknown {item.field} '{value}' (one of: {', '.join(allowed)})", item.position
            )
    return chosen


def _users(item: FieldFilter, ctx: FilterContext) -> tuple[list[str], bool]:
    """`me`, `none`, emails and raw user ids -> (user ids, whether `none` was named)."""
    ids, none = [], False
    for value in _exact(item):
        low = value.lower()
        if low == "none":
            none = True
        elif low == "me":
            ids.append(ctx.user_id or NOBODY)
        else:
            ids.append(ctx.emails.get(normalize_email(value), NOBODY) if "@" in value else value)
    return ids, none


def _status(item: FieldFilter, ctx: FilterContext) -> Sql:
    names = _exact(item)
    stages = f"SELECT id FROM stages WHERE name COLLATE NOCASE IN ({marks(names)})"
    return Sql(f"i.stage_id IN ({stages})", names)


def _column_choice(column: str, allowed: tuple[str, ...]) -> Callable[..., Sql]:
    def compile_(item: FieldFilter, ctx: FilterContext) -> Sql:
        chosen = _choice(item, allowed)
        return Sql(f"{column} IN ({marks(chosen)})", chosen)

    return compile_


def _assignee(item: FieldFilter, ctx: FilterContext) -> Sql:
    ids, none = _users(item, ctx)
    parts = []
    if ids:
        parts.append(
            Sql(
                f"i.id IN (SELECT issue_id FROM issue_assignees WHERE user_id IN ({marks(ids)}))",
                ids,
            )
        )
    if none:
        parts.append(Sql("NOT EXISTS (SELECT 1 FROM issue_assignees a WHERE a.issue_id = i.id)"))
    return _any(parts)


def _reporter(item: FieldFilter, ctx: FilterContext) -> Sql:
    ids, none = _users(item, ctx)
    parts = [Sql(f"i.reporter IN ({marks(ids)})", ids)] if ids else []
    return _any([*parts, Sql("0")] if none else parts)


def _tag(item: FieldFilter, ctx: FilterContext) -> Sql:
    names = [v for v in _exact(item) if v.lower() != "none"]
    parts = []
    if names:
        parts.append(
            Sql(
                "i.id IN (SELECT it.issue_id FROM issue_tags it JOIN tags t ON t.id = it.tag_id "
                f"WHERE t.name COLLATE NOCASE IN ({marks(names)}))",
                names,
            )
        )
    if len(names) < len(item.values):
        parts.append(Sql("NOT EXISTS (SELECT 1 FROM issue_tags it WHERE it.issue_id = i.id)"))
    return _any(parts)


def _sprint(item: FieldFilter, ctx: FilterContext) -> Sql:
    values = _exact(item)
    names = [v for v in values if v.lower() not in ("none", "current")]
    lows = {v.lower() for v in values}
    chosen = [f"name COLLATE NOCASE IN ({marks(names)})"] if names else []
    chosen += ["state = 'active'"] if "current" in lows else []
    parts = []
    if chosen:
        where = " OR ".join(chosen)
        parts.append(Sql(f"i.sprint_id IN (SELECT id FROM sprints WHERE {where})", names))
    if "none" in lows:
        parts.append(Sql("i.sprint_id IS NULL"))
    return _any(parts)


def _project(item: FieldFilter, ctx: FilterContext) -> Sql:
    keys = _exact(item)
    projects = f"SELECT id FROM projects WHERE key COLLATE NOCASE IN ({marks(keys)})"
    return Sql(f"i.project_id IN ({projects})", keys)


def _parent(item: FieldFilter, ctx: FilterContext) -> Sql:
    """`KEY-N` anywhere in scope; a bare `N` in the issue's own project."""
    parts = []
    for ref in _exact(item):
        key, _, number = ref.rpartition("-")
        if key:
            parts.append(
                Sql(
                    "i.parent_id IN (SELECT p.id FROM issues p "
                    "JOIN projects r ON r.id = p.project_id "
                    "WHERE r.key = ? COLLATE NOCASE AND p.number = ?)",
                    [key, int(number)],
                )
            )
        else:
            parts.append(
                Sql(
                    "i.parent_id IN (SELECT p.id FROM issues p WHERE p.project_id = i.project_id "
                    "AND p.number = ?)",
                    [int(number)],
                )
            )
    return _any(parts)


_IS = {
    "open": "i.stage_id IN (SELECT id FROM stages WHERE category != 'done')",
    "closed": "i.stage_id IN (SELECT id FROM stages WHERE category = 'done')",
}
_HAS = {
    "assignee": "EXISTS (SELECT 1 FROM issue_assignees a WHERE a.issue_id = i.id)",
    "sprint": "i.sprint_id IS NOT NULL",
    "due": "i.due_date IS NOT NULL",
}


def _is(item: FieldFilter, ctx: FilterContext) -> Sql:
    return _any([Sql(_IS[v]) for v in _exact(item)])


def _has(item: FieldFilter, ctx: FilterContext) -> Sql:
    return _any([Sql(_HAS[v]) for v in _exact(item)])


def _date_field(item: FieldFilter, ctx: FilterContext) -> Sql:
    column = _DATE_COLUMNS[item.field]
    parts = []
    for value in item.values:
        if isinstance(value, Comparison | Range):
            parts.append(date_predicate(column, value, ctx.now))
    return _any(parts)


def date_predicate(column: str, value: Comparison | Range, now: datetime) -> Sql:
    """A comparison or range of DateValues against an ISO text column (see date_bounds)."""
    if isinstance(value, Comparison):
        assert not isinstance(value.value, str)
        start, end = date_bounds(value.value, now)
        op, bound = {">": (">=", end), ">=": (">=", start), "<": ("<", start), "<=": ("<", end)}[
            value.op
        ]
        return Sql(f"{column} {op} ?", [stamp(bound)])
    assert not isinstance(value.lo, str) and not isinstance(value.hi, str)
    low, _ = date_bounds(value.lo, now)
    _, high = date_bounds(value.hi, now)
    return Sql(f"({column} >= ? AND {column} < ?)", [stamp(low), stamp(high)])


def stamp(moment: datetime) -> str:
    """ISO text as stored (ms, Z), rounded up to the next millisecond so `< end` keeps its ms.

    Formatted by hand: strftime does not zero-pad years before 1000 on glibc.
    """
    if moment.microsecond % 1000:
        moment += timedelta(microseconds=1000 - moment.microsecond % 1000)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


_KNOWN: dict[str, Callable[[FieldFilter, FilterContext], Sql]] = {
    "status": _status,
    "priority": _column_choice("i.priority", PRIORITIES),
    "type": _column_choice("i.type", ISSUE_TYPES),
    "assignee": _assignee,
    "reporter": _reporter,
    "tag": _tag,
    "sprint": _sprint,
    "project": _project,
    "parent": _parent,
    "is": _is,
    "has": _has,
    "created": _date_field,
    "updated": _date_field,
    "resolved": _date_field,
    "due": _date_field,
}


# --- custom fields ------------------------------------------------------------------------


def _custom(conn: sqlite3.Connection, item: FieldFilter, ctx: FilterContext) -> Sql:
    """Every visible project's field of that name (ids differ per project), OR-ed."""
    rows = conn.execute(
        "SELECT id, project_id, type FROM custom_fields WHERE name = ? COLLATE NOCASE "
        "AND project_id IN (SELECT value FROM json_each(?)) ORDER BY project_id",
        (item.field, json.dumps(ctx.project_ids)),
    ).fetchall()
    if not rows:
        raise QuerySyntaxError(f"unknown field '{item.field}'", item.position)
    parts = []
    for row in rows:
        path = '$."' + row["id"] + '"'
        value = _custom_value(row["type"], path, item, ctx)
        parts.append(Sql(f"(i.project_id = ? AND {value.text})", [row["project_id"], *value.args]))
    return _any(parts)


def _custom_value(kind: str, path: str, item: FieldFilter, ctx: FilterContext) -> Sql:
    column = "json_extract(i.custom_fields, ?)"
    if kind == "multi_enum":
        return _any([_multi(path, v, item) for v in item.values])
    if kind == "user":
        ids, none = _users(item, ctx)
        parts = [Sql(f"{column} IN ({marks(ids)})", [path, *ids])] if ids else []
        return _any(parts + ([Sql(f"{column} IS NULL", [path])] if none else []))
    compile_value = {"number": _number, "date": _date}.get(kind, _text)
    return _any([compile_value(column, path, v, item, ctx.now) for v in item.values])


def _is_none(value: Value) -> bool:
    return isinstance(value, Exact) and value.value.lower() == "none"


def _text(column: str, path: str, value: Value, item: FieldFilter, now: datetime) -> Sql:
    if _is_none(value):
        return Sql(f"{column} IS NULL", [path])
    if not isinstance(value, Exact):
        raise QuerySyntaxError(
            f"'{item.field}' is not a number or date field; it takes no comparisons", item.position
        )
    return Sql(f"lower({column}) = lower(?)", [path, value.value])


def _multi(path: str, value: Value, item: FieldFilter) -> Sql:
    if _is_none(value):
        return Sql("coalesce(json_array_length(i.custom_fields, ?), 0) = 0", [path])
    if not isinstance(value, Exact):
        raise QuerySyntaxError(f"'{item.field}' takes no comparisons", item.position)
    return Sql(
        "EXISTS (SELECT 1 FROM json_each(i.custom_fields, ?) e WHERE lower(e.value) = lower(?))",
        [path, value.value],
    )


def _number(column: str, path: str, value: Value, item: FieldFilter, now: datetime) -> Sql:
    if _is_none(value):
        return Sql(f"{column} IS NULL", [path])
    if isinstance(value, Exact):
        return Sql(f"{column} = ?", [path, _float(value.value, item)])
    if isinstance(value, Comparison):
        assert isinstance(value.value, str)
        return Sql(f"{column} {value.op} ?", [path, _float(value.value, item)])
    assert isinstance(value.lo, str) and isinstance(value.hi, str)
    low, high = _float(value.lo, item), _float(value.hi, item)
    return Sql(f"{column} BETWEEN ? AND ?", [path, low, high])


def _float(text: str, item: FieldFilter) -> float:
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):
        raise QuerySyntaxError(f"'{item.field}' needs a number, not '{text}'", item.position)
    return number


def _date(column: str, path: str, value: Value, item: FieldFilter, now: datetime) -> Sql:
    if _is_none(value):
        return Sql(f"{column} IS NULL", [path])
    typed = _as_date_value(value, item)
    predicate = date_predicate(_AS_INSTANT.format(column), typed, now)
    # the column appears once per comparison and twice per range, each with its path
    paths = [path] * predicate.text.count("json_extract")
    return Sql(predicate.text, _interleave(paths, predicate.args))


def _interleave(paths: list[str], bounds: list[Any]) -> list[Any]:
    return [arg for pair in zip(paths, bounds, strict=True) for arg in pair]


def _as_date_value(value: Value, item: FieldFilter) -> Comparison | Range:
    """Custom date values arrive as strings; type them as the parser types date fields."""
    position = item.position
    if isinstance(value, Comparison):
        assert isinstance(value.value, str)
        return Comparison(op=value.op, value=parse_date(value.value, position))
    if isinstance(value, Range):
        assert isinstance(value.lo, str) and isinstance(value.hi, str)
        return Range(lo=parse_date(value.lo, position), hi=parse_date(value.hi, position))
    day: DateValue = parse_date(value.value, position)
    if isinstance(day, RelativeDate):  # a window between then and now, as on date fields
        now = RelativeDate(amount=0, unit=day.unit)
        return Range(lo=day, hi=now) if day.amount <= 0 else Range(lo=now, hi=day)
    return Range(lo=day, hi=day)
