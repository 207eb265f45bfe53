"""The issue shape is declared once: the SQL renderings follow the model's field list."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tracker.domain.models.issues import Issue
from tracker.storage import changes as change_sql
from tracker.storage import issue_shape
from tracker.storage import issues as issue_sql
from tracker.storage.migrate import apply_migrations


def named_fields(sql: str) -> list[str]:
    """The keys of the first json_object(...) in `sql`, in order (one pair per line)."""
    body = sql[sql.index("json_object(") :]
    return re.findall(r"^    '(\w+)', ", body[: body.index("\n)")], flags=re.MULTILINE)


def test_every_rendering_names_every_model_field_in_order() -> None:
    fields = list(Issue.model_fields)
    assert list(issue_shape.FIELDS) == fields
    assert named_fields(issue_sql.ISSUE_JSON) == fields
    assert named_fields(change_sql._LOG_ISSUES) == fields


def test_overrides_name_real_fields_and_plain_fields_are_real_columns(tmp_path: Path) -> None:
    """A renamed model field must not leave a stale override or an unknown column behind."""
    assert set(issue_shape.COMPUTED) <= set(issue_shape.FIELDS)
    assert set(issue_shape.IMPORTED) <= set(issue_shape.COMPUTED)
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    apply_migrations(conn, "tenant")
    columns = {row[1] for row in conn.execute("PRAGMA table_info(issues)")}
    assert set(issue_shape.COLUMNS) <= columns
    conn.close()
