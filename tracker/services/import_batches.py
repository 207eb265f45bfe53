"""One batch of a bulk import: prepared off the writer thread, written in one transaction.

Preparing a batch (ids, board ranks, the JSON documents) is pure Python and
needs only a snapshot of the project, a `Plan`: its key, its stages and the
last board rank of each column. So it runs on a worker thread while the
previous batch is being written (tracker.services.imports). The write re-reads
the plan inside its transaction; if anything changed in between (a card added
to a column, a stage renamed or removed), it prepares the batch again there,
on the fresh plan. Numbers and row ids are never prepared: the write takes
them inside the transaction and SQLite adds each row's position.

The write logs one `create` change per issue and per comment (SQLite renders
them, tracker.storage.changes.log_creates) and records nothing on the unit; the
importer builds the published Change objects from `Written` after COMMIT,
again off the writer thread.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fractional_indexing import generate_key_between

from tracker.domain.changes import Actor, Change
from tracker.domain.ids import new_ids
from tracker.errors import ValidationFailed
from tracker.services.changes import UnitOfWork
from tracker.storage import bulk
from tracker.storage import changes as change_sql
from tracker.storage.bulk import BulkComment, BulkDocuments, BulkIssue

if TYPE_CHECKING:
    from tracker.services.imports import ImportComment, ImportIssue

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Plan:
    """What preparing a batch needs to know of its project; equal plans, same batch."""

    project_id: str
    key: str
    stages: tuple[tuple[str, str], ...]  # (id, name), by id
    last_ranks: tuple[tuple[str, str | None], ...]  # (stage id, last board rank), by id

    def with_ranks(self, ranks: dict[str, str | None]) -> Plan:
        return Plan(self.project_id, self.key, self.stages, tuple(sorted(ranks.items())))


def read_plan(conn: sqlite3.Connection, project_id: str) -> Plan:
    key, stages = bulk.project_plan(conn, project_id)
    names = tuple((stage_id, name) for stage_id, name, _ in stages)
    return Plan(project_id, key, names, tuple((stage_id, last) for stage_id, _, last in stages))


@dataclass(frozen=True, slots=True)
class Prepared:
    chunk: list[ImportIssue]
    plan: Plan  # what it was prepared on
    next_plan: Plan  # the project after this batch: its ranks are the columns' last
    issues: list[BulkIssue]
    comments: list[BulkComment]
    documents: BulkDocuments


def prepare(chunk: list[ImportIssue], plan: Plan) -> Prepared:
    """Rows and documents for `chunk`; ValidationFailed if it names unknown stages."""
    stage_ids = {name.lower(): stage_id for stage_id, name in plan.stages}
    unknown = sorted({i.stage for i in chunk if i.stage.lower() not in stage_ids})
    if unknown:
        raise ValidationFailed([("stage", f"unknown stage '{name}'") for name in unknown])
    ranks = dict(plan.last_ranks)
    ids = iter(new_ids(len(chunk) + sum(len(i.comments) for i in chunk)))
    issues: list[BulkIssue] = []
    comments: list[BulkComment] = []
    for item in yielding(chunk):
        issue_id, stage_id = next(ids), stage_ids[item.stage.lower()]
        ranks[stage_id] = rank = generate_key_between(ranks[stage_id], None)
        ordered = sorted(item.comments, key=_created)  # the view's order (bulk docstring)
        comments += [BulkComment(next(ids), issue_id, c.author, c.body, c.created_at)
                     for c in ordered]  # fmt: skip
        issues.append(BulkIssue(
            issue_id, item.title, item.description, item.type, item.priority, stage_id, rank,
            item.reporter, len(ordered), item.created_at, item.updated_at, item.resolved_at,
            "\n".join(c.body for c in ordered),
        ))  # fmt: skip
    documents = bulk.encode(issues, comments)
    return Prepared(chunk, plan, plan.with_ranks(ranks), issues, comments, documents)


def _created(comment: ImportComment) -> str:
    return comment.created_at


@dataclass(frozen=True, slots=True)
class Written:
    """A committed batch: enough to build its Change objects (`changes`)."""

    prepared: Prepared
    first_number: int
    first_seq: int
    change_ids: list[str]  # in seq order: the issues', then the comments'
    batch: str
    at: str


def write(uow: UnitOfWork, prepared: Prepared) -> Written:
    """The writer-thread unit: insert the batch and log its changes."""
    conn, plan = uow.conn, read_plan(uow.conn, prepared.plan.project_id)
    if plan != prepared.plan:  # the project moved on since the batch was prepared
        prepared = prepare(prepared.chunk, plan)
    issues, comments = prepared.issues, prepared.comments
    row_id, comment_row, first_seq = bulk.next_row_ids(conn)
    number = bulk.reserve_numbers(conn, plan.project_id, len(issues))
    first = (row_id, number, comment_row)
    bulk.insert_issues(conn, plan.project_id, first, issues, comments, prepared.documents)
    actor = uow.actor
    first_seq, change_ids = change_sql.log_creates(
        conn, (plan.project_id, plan.key), (row_id, row_id + len(issues) - 1),
        (comment_row, comment_row + len(comments) - 1),
        (uow.at, actor.user_id, actor.origin, uow.batch, actor.client_id, actor.mutation_id),
        first_seq,
    )  # fmt: skip
    return Written(prepared, number, first_seq, change_ids, uow.batch, uow.at)


def changes(written: Written, actor: Actor) -> tuple[Change, ...]:
    """The batch's Change objects, as its log rows read back (a test holds them equal)."""
    prepared, number = written.prepared, written.first_number
    plan = prepared.plan
    names = dict(plan.stages)
    images = [
        ("issue", issue.id, issue.id, _image(issue, number + n, plan.key, names))
        for n, issue in yielding(enumerate(prepared.issues))
    ]
    images += [("comment", c.id, c.issue_id, _comment_image(c)) for c in prepared.comments]
    at, batch, seq = written.at, written.batch, written.first_seq
    made = []
    for change_id, (entity, entity_id, issue_id, image) in yielding(
        zip(written.change_ids, images, strict=True)
    ):
        # positional: a NamedTuple built by keyword costs twice as much
        made.append(Change(
            seq, change_id, at, actor.user_id, actor.origin, entity, entity_id,
            plan.project_id, "create", None, None, image, batch, 1, {"issue": issue_id},
            actor.client_id, actor.mutation_id,
        ))  # fmt: skip
        seq += 1
    return tuple(made)


def yielding(items: Iterable[T], every: int = 100) -> Iterator[T]:
    """`items`, giving the GIL away every `every` items.

    These loops run on a worker thread while the tenant's writer runs the
    previous batch; the writer needs the GIL for a moment after each SQLite
    statement, and a busy Python thread would keep it up to the 5 ms switch
    interval every time (measured: ~100 ms of a 500 ms batch write).
    """
    for n, item in enumerate(items):
        if n % every == 0:
            time.sleep(0)
        yield item


def _image(issue: BulkIssue, number: int, key: str, stage_names: dict[str, str]) -> dict[str, Any]:
    """The issue as the API shows it right after creation (what issues.create_issue logs)."""
    return {
        "id": issue.id, "key": f"{key}-{number}", "number": number, "title": issue.title,
        "description": issue.description, "type": issue.type, "priority": issue.priority,
        "status": stage_names[issue.stage_id], "reporter": issue.reporter, "assignees": [],
        "tags": [], "sprint_id": None, "parent": None, "due_date": None, "estimate": None,
        "custom_fields": {}, "time_spent": 0, "comment_count": issue.comment_count,
        "created_at": issue.created_at, "updated_at": issue.updated_at,
        "resolved_at": issue.resolved_at, "version": 1,
    }  # fmt: skip


def _comment_image(comment: BulkComment) -> dict[str, Any]:
    """The comment as comments.create_comment logs it."""
    return {
        "id": comment.id, "issue_id": comment.issue_id, "author": comment.author,
        "body": comment.body, "created_at": comment.created_at,
        "updated_at": comment.created_at, "version": 1,
    }  # fmt: skip
