"""Issues and what hangs off them: tags, assignees, custom field definitions, history.

Limits (SPEC §4): a title is 1-500 characters, a description at most 100 KB of
UTF-8. Tag names are 1-50 characters without commas, because a comma means
"any of" in filters and in the query language.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from tracker.domain.bounds import ISSUE_NUMBER_DIGITS, MAX_ISSUE_NUMBER, date_in_range
from tracker.domain.emails import has_invisible_char
from tracker.domain.issue_values import ISSUE_TYPES as ISSUE_TYPES  # re-exported
from tracker.domain.issue_values import PRIORITIES as PRIORITIES
from tracker.domain.models.base import Input, IssueNumber, Output

IssueType = Literal["bug", "feature", "task", "improvement", "epic", "story"]
Priority = Literal["critical", "major", "normal", "minor"]
FieldType = Literal["text", "number", "date", "enum", "multi_enum", "user"]
IssueSort = Literal[
    "number-desc",
    "number-asc",
    "created-desc",
    "created-asc",
    "updated-desc",
    "updated-asc",
    "priority-desc",
    "priority-asc",
]

TITLE_MAX = 500
DESCRIPTION_MAX_BYTES = 100 * 1024
MAX_LINKS = 50  # assignees or tags on one issue
TAG_NAME_RE = r"^[^,\s](?:[^,]{0,48}[^,\s])?$"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_KEY_RE = re.compile(rf"^([A-Za-z][A-Za-z0-9]{{1,9}})-([0-9]{{1,{ISSUE_NUMBER_DIGITS}}})$")


def _visible(value: str) -> str:
    """Tag names are shown and typed: no NUL, control or invisible (zero-width, bidi) characters."""
    if has_invisible_char(value):
        raise ValueError("must not contain control or invisible characters")
    return value


TagName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=50, pattern=TAG_NAME_RE),
    AfterValidator(_visible),
]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def check_date(value: str | None) -> str | None:
    """A calendar date as YYYY-MM-DD (no times, no other spellings), within bounds.DATE_RANGE."""
    if value is None:
        return None
    try:
        if not _DATE_RE.match(value):
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date as YYYY-MM-DD") from None
    date_in_range(day)
    return value


def parse_issue_ref(value: str | int) -> tuple[str | None, int]:
    """`42`, `"42"` or `"WEB-42"` -> (project key or None, number); ValueError otherwise."""
    if isinstance(value, int):
        number, key = value, None
    elif value.isascii() and value.isdigit() and len(value) <= ISSUE_NUMBER_DIGITS:
        number, key = int(value), None
    elif match := _KEY_RE.match(value.strip()):
        key, number = match.group(1).upper(), int(match.group(2))
    else:
        raise ValueError("must be an issue number or a key such as WEB-42")
    if not 1 <= number <= MAX_ISSUE_NUMBER:
        raise ValueError(f"issue numbers are 1..{MAX_ISSUE_NUMBER}")
    return key, number


class _IssueFields(Input):
    """Validators shared by create and patch."""

    @field_validator("title", check_fields=False)
    @classmethod
    def _title(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value.strip() if value is not None else None

    @field_validator("description", check_fields=False)
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode("utf-8")) > DESCRIPTION_MAX_BYTES:
            raise ValueError(f"must be at most {DESCRIPTION_MAX_BYTES} bytes of UTF-8")
        return value

    @field_validator("due_date", check_fields=False)
    @classmethod
    def _due(cls, value: str | None) -> str | None:
        return check_date(value)

    @field_validator("parent", check_fields=False)
    @classmethod
    def _parent(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_issue_ref(value)
        return value

    @field_validator("assignees", "tags", check_fields=False)
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len({v.lower() for v in value}) != len(value):
            raise ValueError("must not repeat a value")
        return value


class IssueCreate(_IssueFields):
    """POST .../issues. Only `title` is required."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = ""
    type: IssueType = "task"
    priority: Priority = "normal"
    status: str | None = Field(None, min_length=1, max_length=100)
    assignees: list[UserId] = Field(default_factory=list, max_length=MAX_LINKS)
    tags: list[TagName] = Field(default_factory=list, max_length=MAX_LINKS)
    sprint_id: str | None = Field(None, min_length=1, max_length=64)
    parent: str | IssueNumber | None = None
    due_date: str | None = Field(None, json_schema_extra={"format": "date"})
    estimate: int | None = Field(None, ge=0, le=10_000_000, description="minutes")
    custom_fields: dict[str, Any] = Field(default_factory=dict, max_length=100)


def _no_null_defaults(schema: dict[str, Any]) -> None:
    """A non-nullable PATCH field defaults to "absent", not to null: keep null out of its schema."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None and "anyOf" not in prop:
            del prop["default"]


#: The default of a PATCH field typed without None: "not given". Typed Any once here
#: because the model's type is what the field accepts (an explicit null is refused),
#: while the default only marks the field absent (`model_fields_set` tells them apart).
ABSENT: Any = None


class IssuePatch(_IssueFields):
    """PATCH .../issues/{n}: only the fields present change; `custom_fields` merges by name.

    Fields typed without `None` (title, status...) refuse an explicit null; the
    others (sprint_id, parent, due_date, estimate) clear with null.
    """

    model_config = _IssueFields.model_config | {"json_schema_extra": _no_null_defaults}

    title: str = Field(ABSENT, min_length=1, max_length=TITLE_MAX)
    description: str = Field(ABSENT)
    type: IssueType = Field(ABSENT)
    priority: Priority = Field(ABSENT)
    status: str = Field(ABSENT, min_length=1, max_length=100)
    assignees: list[UserId] = Field(ABSENT, max_length=MAX_LINKS)
    tags: list[TagName] = Field(ABSENT, max_length=MAX_LINKS)
    sprint_id: str | None = Field(None, min_length=1, max_length=64)
    parent: str | IssueNumber | None = None
    due_date: str | None = Field(None, json_schema_extra={"format": "date"})
    estimate: int | None = Field(None, ge=0, le=10_000_000, description="minutes")
    custom_fields: dict[str, Any] = Field(ABSENT, max_length=100)
    before: IssueNumber | None = Field(None, description="board: put the card above this issue")
    after: IssueNumber | None = Field(None, description="board: put the card below this issue")


class Issue(Output):
    id: str
    key: str
    number: int
    title: str
    description: str
    type: IssueType
    priority: Priority
    status: str
    reporter: str
    assignees: list[str]
    tags: list[str]
    sprint_id: str | None
    parent: str | None
    due_date: str | None
    estimate: int | None
    custom_fields: dict[str, Any]
    time_spent: int
    comment_count: int
    created_at: str
    updated_at: str
    resolved_at: str | None
    version: int


class IssueListQuery(Input):
    """GET .../issues filters. A comma means "any of"; `assignee`/`sprint` take `none`."""

    model_config = Input.model_config | {"strict": False, "extra": "ignore"}

    status: str | None = Field(None, max_length=500, description="stage names")
    assignee: str | None = Field(None, max_length=500, description="user ids, `me` or `none`")
    tag: str | None = Field(None, max_length=500, description="tag names")
    priority: str | None = Field(None, max_length=100)
    type: str | None = Field(None, max_length=100)
    sprint: str | None = Field(None, max_length=500, description="sprint ids or `none`")
    sort: IssueSort = "number-desc"
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=1000)
    q: str | None = Field(None, max_length=2000, description="query language (search)")
    highlight: bool = Field(False, description="with q: add highlighted snippets")

    @field_validator("priority", "type")
    @classmethod
    def _known(cls, value: str | None, info: Any) -> str | None:
        allowed = PRIORITIES if info.field_name == "priority" else ISSUE_TYPES
        if value is not None and any(v not in allowed for v in split_list(value)):
            raise ValueError(f"must be one or more of {', '.join(allowed)}")
        return value


def split_list(value: str) -> list[str]:
    """`a, b,,c` -> ["a", "b", "c"]."""
    return [part.strip() for part in value.split(",") if part.strip()]


class PageQuery(Input):
    """?limit= and ?cursor= of a plain list."""

    model_config = Input.model_config | {"strict": False, "extra": "ignore"}

    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=1000)


class HistoryItem(Output):
    """One row of the change log about an issue (its own fields or its sub-resources)."""

    seq: int
    at: str
    actor: str | None
    origin: str
    entity: str
    entity_id: str
    op: str
    field: str | None
    old: Any = None
    new: Any = None
    batch: str


# --- tags ---------------------------------------------------------------------------------


class TagIn(Input):
    name: TagName
    color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")


class Tag(Output):
    id: str
    name: str
    color: str | None
    created_at: str


class IssueTagsIn(Input):
    """PUT .../issues/{n}/tags: the complete new set of tag names."""

    tags: list[TagName] = Field(max_length=MAX_LINKS)

    @field_validator("tags")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len({v.lower() for v in value}) != len(value):
            raise ValueError("must not repeat a value")
        return value


# --- assignees ----------------------------------------------------------------------------


class AssigneesIn(Input):
    """PUT .../issues/{n}/assignees: the complete new set of user ids."""

    user_ids: list[UserId] = Field(max_length=MAX_LINKS)

    @field_validator("user_ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a value")
        return value


class Assignee(Output):
    id: str
    email: str
    display_name: str


# --- custom field definitions -------------------------------------------------------------


class CustomFieldIn(Input):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\s:,\"](?:[^:,\"]*[^\s:,\"])?$")
    type: FieldType
    options: list[str] = Field(default_factory=list, max_length=200)
    required: bool = False
    position: int | None = Field(None, ge=0, le=10_000)


class CustomFieldPatch(Input):
    """A field's type never changes (stored values would stop matching it)."""

    model_config = Input.model_config | {"json_schema_extra": _no_null_defaults}

    name: str = Field(
        ABSENT, min_length=1, max_length=100, pattern=r"^[^\s:,\"](?:[^:,\"]*[^\s:,\"])?$"
    )
    options: list[str] = Field(ABSENT, max_length=200)
    required: bool = Field(ABSENT)
    position: int = Field(ABSENT, ge=0, le=10_000)


class CustomField(Output):
    id: str
    name: str
    type: FieldType
    options: list[str]
    required: bool
    position: int
    created_at: str
    updated_at: str
