"""Custom field values checked against their project's definitions, with no I/O.

Issues store values as JSON keyed by field id (a rename never touches issues);
requests and responses use field names, matched case-insensitively. A `null`
value unsets the field. `user` values are only checked for shape here; whether
the user can see the project is the service's question.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tracker.domain.bounds import MAX_INT
from tracker.domain.models.issues import check_date
from tracker.errors import ValidationFailed

TEXT_MAX = 10_000
OPTION_MAX = 100


@dataclass(frozen=True, slots=True)
class FieldDef:
    id: str
    name: str
    type: str
    options: tuple[str, ...] = ()
    required: bool = False


def check_options(field_type: str, options: list[str]) -> list[tuple[str, str]]:
    """Problems with a definition's option list (enums need distinct, non-blank options)."""
    if field_type not in ("enum", "multi_enum"):
        return [("options", "only enum and multi_enum fields have options")] if options else []
    problems = []
    if not options:
        problems.append(("options", "an enum needs at least one option"))
    if any(not o.strip() or len(o) > OPTION_MAX or "," in o for o in options):
        problems.append(("options", f"options are 1-{OPTION_MAX} characters without commas"))
    if len({o.lower() for o in options}) != len(options):
        problems.append(("options", "options must be distinct"))
    return problems


def _check_value(field: FieldDef, value: Any) -> str | None:
    """Why `value` does not fit `field`, or None when it does."""
    kind = field.type
    if kind == "text":
        ok = isinstance(value, str) and len(value) <= TEXT_MAX
        return None if ok else f"must be text of at most {TEXT_MAX} characters"
    if kind == "number":
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value):
            return "must be a number"
        return None if abs(value) <= MAX_INT else f"must lie between -{MAX_INT} and {MAX_INT}"
    if kind == "date":
        try:
            return None if isinstance(value, str) and check_date(value) else "must be a date"
        except ValueError as exc:
            return str(exc)
    if kind == "enum":
        ok = isinstance(value, str) and value in field.options
        return None if ok else f"must be one of: {', '.join(field.options)}"
    if kind == "multi_enum":
        return _check_multi(field, value)
    ok = isinstance(value, str) and 0 < len(value) <= 64
    return None if ok else "must be a user id"


def _check_multi(field: FieldDef, value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of options"
    if len(set(value)) != len(value):
        return "must not repeat an option"
    unknown = [v for v in value if v not in field.options]
    return f"unknown options: {', '.join(unknown)}" if unknown else None


def apply_values(
    definitions: Iterable[FieldDef],
    stored: Mapping[str, Any],
    given: Mapping[str, Any],
    *,
    creating: bool,
) -> dict[str, Any]:
    """The new stored mapping {field_id: value} after applying `given` {name: value}.

    Raises ValidationFailed naming every bad field (`custom_fields.<name>`) at once:
    unknown names, values of the wrong shape, and required fields left empty.
    """
    by_name = {d.name.lower(): d for d in definitions}
    result = {k: v for k, v in stored.items() if k in {d.id for d in by_name.values()}}
    errors: list[tuple[str, str]] = []
    for name, value in given.items():
        field = by_name.get(name.lower())
        if field is None:
            errors.append((f"custom_fields.{name}", "no such field in this project"))
        elif value is None:
            result.pop(field.id, None)
        elif (problem := _check_value(field, value)) is not None:
            errors.append((f"custom_fields.{field.name}", problem))
        else:
            result[field.id] = value
    touched = {n.lower() for n in given}
    for field in by_name.values():
        missing = field.required and result.get(field.id) in (None, "", [])
        if missing and (creating or field.name.lower() in touched):
            errors.append((f"custom_fields.{field.name}", "is required"))
    if errors:
        raise ValidationFailed(errors)
    return result


def user_values(definitions: Iterable[FieldDef], given: Mapping[str, Any]) -> set[str]:
    """The user ids named by `user`-type values in a request (to check their access)."""
    users = {d.name.lower() for d in definitions if d.type == "user"}
    return {v for n, v in given.items() if n.lower() in users and isinstance(v, str)}


def by_name(definitions: Iterable[FieldDef], stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored {field_id: value} -> {name: value}; values of deleted fields are dropped."""
    names = {d.id: d.name for d in definitions}
    return {names[k]: v for k, v in stored.items() if k in names}


def from_text(definitions: Iterable[FieldDef], raw: Mapping[str, str]) -> dict[str, Any]:
    """Values typed on a command line (`NAME=VALUE`) -> JSON values for their field types.

    Numbers parse as int or float, multi_enum splits on commas, an empty value
    unsets the field; unknown names pass through for `apply_values` to refuse.
    """
    types = {d.name.lower(): d.type for d in definitions}
    values: dict[str, Any] = {}
    for name, text in raw.items():
        kind = types.get(name.lower())
        if text == "":
            values[name] = None
        elif kind == "number":
            values[name] = _number(text)
        elif kind == "multi_enum":
            values[name] = [part.strip() for part in text.split(",") if part.strip()]
        else:
            values[name] = text
    return values


def _number(text: str) -> int | float | str:
    """int or float when the text is one; else the text itself (then refused as not a number)."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def changed_by_name(
    defs: list[FieldDef], old: dict[str, Any], new: dict[str, Any], before: dict[str, Any]
) -> dict[str, Any]:
    """`{custom_fields.<name>: new}` per changed field; adds the old values to `before`."""
    changed: dict[str, Any] = {}
    for field in defs:
        if old.get(field.id) != new.get(field.id):
            before[f"custom_fields.{field.name}"] = old.get(field.id)
            changed[f"custom_fields.{field.name}"] = new.get(field.id)
    return changed
