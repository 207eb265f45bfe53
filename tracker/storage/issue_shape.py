"""The issue's API shape as SQL, generated from the one list of its fields.

The list is the pydantic model's (`tracker.domain.models.issues.Issue`, fields in
order), copied into `FIELDS` (a test holds the two equal). A field stored in a column
of the same name needs no other entry here: it is rendered as `i.<name>`, so a new
plain field is the model, `FIELDS` and its migration. Only fields computed from other
columns or tables are spelled out. Both SQL renderings read an issue row `i` joined to
its stage `s` (and, for the view, its parent `par`); ?1 is the project key. Tests hold
the list rendering (`ISSUE_OBJECT`) to GET /issues/{n} and the import image to the
logged model.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Every field of the API shape, in the model's order. Spelled out, not read from the
#: model, so the CLI's fast read path can render issues without importing pydantic
#: (docs/cli.md); tests/test_storage_issue_shape.py holds it to the model.
FIELDS: tuple[str, ...] = (
    "id", "key", "number", "title", "description", "type", "priority", "status", "reporter",
    "assignees", "tags", "sprint_id", "parent", "due_date", "estimate", "custom_fields",
    "time_spent", "comment_count", "created_at", "updated_at", "resolved_at", "version",
)  # fmt: skip

#: Fields that are not a column of the same name: name -> SQL expression.
#: Custom field values are stored by field id and shown by name; values of deleted
#: fields are dropped (as `tracker.domain.custom_fields.by_name` does).
COMPUTED: Mapping[str, str] = {
    "key": "?1 || '-' || i.number",
    "status": "s.name",
    "assignees": """json((SELECT json_group_array(user_id) FROM
        (SELECT user_id FROM issue_assignees WHERE issue_id = i.id ORDER BY user_id)))""",
    "tags": """json((SELECT json_group_array(name) FROM
        (SELECT t.name FROM issue_tags it JOIN tags t ON t.id = it.tag_id
         WHERE it.issue_id = i.id ORDER BY t.name COLLATE NOCASE)))""",
    "parent": "CASE WHEN par.number IS NULL THEN NULL ELSE ?1 || '-' || par.number END",
    "custom_fields": """json((SELECT json_group_object(cf.name, CASE
            WHEN v.type IN ('array', 'object') THEN json(v.value) ELSE v.value END)
        FROM json_each(i.custom_fields) v
        JOIN custom_fields cf ON cf.id = v.key AND cf.project_id = i.project_id))""",
}

#: What a freshly imported issue has instead of the link lookups (it has no links
#: yet, and the lookups tripled the cost of logging an import).
IMPORTED: Mapping[str, str] = {
    "assignees": "json('[]')",
    "tags": "json('[]')",
    "parent": "NULL",
    "custom_fields": "json('{}')",
}

#: The fields `COMPUTED` does not cover: each a column of the same name.
COLUMNS: tuple[str, ...] = tuple(name for name in FIELDS if name not in COMPUTED)


def json_object(overrides: Mapping[str, str] = COMPUTED) -> str:
    """SQL `json_object(...)` of the issue row `i`: one pair per field, in order."""
    pairs = (f"'{name}', {overrides.get(name) or f'i.{name}'}" for name in FIELDS)
    return "json_object(\n    " + ",\n    ".join(pairs) + "\n)"


#: The issue as the API shows it (needs `par`, the parent row, LEFT JOINed).
ISSUE_OBJECT = json_object()
#: The issue as an import creates it (no `par` join needed).
IMPORTED_OBJECT = json_object({**COMPUTED, **IMPORTED})
