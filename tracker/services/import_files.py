"""Importing a JSON Lines file of issues through the bulk import path.

Two doors: `rhythm issue import FILE` (cli/issue_args.py) and `POST
.../issues/import` (the handler spools the body to a file, then import_file).

Two passes over the file, so a bad file changes nothing and memory stays flat
at any size: the first validates every line (ImportedIssue), checks stage
names and collects the emails it names; the second converts lines to
ImportIssue and streams them to `imports.import_issues`, which writes one
transaction per batch. Errors name the line (at most MAX_ERRORS are listed).

Emails must belong to Rhythm accounts; with `unknown_users_as_me` the
importing user stands in for the others (a migration often brings people who
never log in). A record without `status` lands in the project's first
`todo` stage; `resolved_at` is kept for done stages only (defaulting to
`updated_at`), as the workflow sets it for issues moved there by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from tracker.domain.changes import Actor
from tracker.domain.emails import normalize_email
from tracker.domain.ids import now_iso
from tracker.domain.models.imports import ImportedIssue, ImportReport
from tracker.domain.models.workflow import Stage
from tracker.errors import ValidationFailed
from tracker.services import imports, workflow
from tracker.services.access import ProjectAccess
from tracker.services.imports import ImportComment, ImportIssue
from tracker.services.runtime import Core
from tracker.storage import users as user_sql

MAX_ERRORS = 20


async def import_file(
    core: Core, access: ProjectAccess, actor: Actor, path: Path, *,
    unknown_users_as_me: bool = False, batch_size: int = imports.BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:  # fmt: skip
    """Validate every line, then import them all; ValidationFailed names the bad lines.
    The report's seconds count both passes.

    The parsing runs on worker threads (a large file would hold the event loop
    for minutes); `access` must already allow importing into its project.
    """
    if actor.user_id is None:
        raise ValidationFailed([("actor", "an import needs a user to act as")])
    began, counted = time.perf_counter(), _Counter()
    stages = await workflow.list_stages(core, access)
    emails = await asyncio.to_thread(_validate, path, {s.name.lower() for s in stages})
    people = await _people(core, emails, actor.user_id, unknown_users_as_me)
    convert = _Converter(stages, people, actor.user_id)
    total = await imports.import_issues(
        core, access, actor,
        counted(convert(record) for _, record in _records(path)), batch_size, progress,
    )  # fmt: skip
    return ImportReport(issues=total, comments=counted.comments,
                        seconds=round(time.perf_counter() - began, 3))  # fmt: skip


def _records(path: Path) -> Iterator[tuple[int, ImportedIssue | ValidationError]]:
    """(line number, record or its validation error) for every non-blank line."""
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    try:
                        yield number, ImportedIssue.model_validate_json(line)
                    except ValidationError as error:
                        yield number, error
    except UnicodeDecodeError as error:
        raise ValidationFailed([("file", f"not UTF-8 text ({error.reason})")]) from None


def _validate(path: Path, stage_names: set[str]) -> set[str]:
    """The first pass: every error (up to MAX_ERRORS), else the emails the file names."""
    errors: list[tuple[str, str]] = []
    emails: set[str] = set()
    for number, record in _records(path):
        if isinstance(record, ValidationError):
            failed = ValidationFailed.from_pydantic(record, f"line {number}: ", whole="line")
            errors += [(e["field"], e["message"]) for e in failed.errors]
        elif record.status is not None and record.status.lower() not in stage_names:
            errors.append((f"line {number}: status", f"no stage named '{record.status}'"))
        else:
            emails |= record.emails()
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise ValidationFailed(errors[:MAX_ERRORS])
    return emails


async def _people(
    core: Core, emails: set[str], me: str, unknown_as_me: bool
) -> dict[str, str]:  # fmt: skip
    """Email (normalized) -> user id for every email the file names."""
    rows = await core.system.read(lambda conn: user_sql.users_by_email(conn, sorted(emails)))
    people = {normalize_email(row["email"]): row["id"] for row in rows}
    unknown = sorted(emails - people.keys())
    if unknown and not unknown_as_me:
        errors = [("reporter/author", f"no user with the email {e}") for e in unknown]
        hint = ("hint", "create these accounts, or import with --unknown-users-as-me")
        raise ValidationFailed([*errors[:MAX_ERRORS], hint])
    return people | dict.fromkeys(unknown, me)


class _Converter:
    """ImportedIssue (validated file text) -> ImportIssue (ids, stage, defaults filled in)."""

    def __init__(self, stages: list[Stage], people: dict[str, str], me: str) -> None:
        todo = [s for s in stages if s.category == "todo"] or stages
        self._default_stage = min(todo, key=lambda s: s.position).name
        self._done = {s.name.lower() for s in stages if s.category == "done"}
        self._people, self._me, self._now = people, me, now_iso()

    def _person(self, email: str | None) -> str:
        return self._me if email is None else self._people[normalize_email(email)]

    def __call__(self, record: ImportedIssue | ValidationError) -> ImportIssue:
        if isinstance(record, ValidationError):  # the file changed since the first pass
            raise ValidationFailed([("file", "changed during the import")])
        created = record.created_at or self._now
        updated = max(record.updated_at or created, created)
        stage = record.status or self._default_stage
        done = stage.lower() in self._done
        return ImportIssue(
            title=record.title, description=record.description, type=record.type,
            priority=record.priority, stage=stage, reporter=self._person(record.reporter),
            created_at=created, updated_at=updated,
            resolved_at=(record.resolved_at or updated) if done else None,
            comments=tuple(
                ImportComment(self._person(c.author), c.body, c.created_at or created)
                for c in record.comments
            ),
        )  # fmt: skip


class _Counter:
    """Counts the comments of the issues streaming through it."""

    def __init__(self) -> None:
        self.comments = 0

    def __call__(self, issues: Iterable[ImportIssue]) -> Iterator[ImportIssue]:
        for issue in issues:
            self.comments += len(issue.comments)
            yield issue
