"""Bulk import (tracker.services.imports) on real tenant files: rows, search index,
change log, events and history must be what the one-by-one API path would leave."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import pytest

from tracker.domain.changes import Actor, ChangeBatch
from tracker.domain.ids import new_ids
from tracker.domain.models.accounts import RegisterIn
from tracker.domain.models.issues import PRIORITIES, PageQuery
from tracker.domain.models.orgs import OrgIn, ProjectIn
from tracker.domain.permissions import OrgRole
from tracker.errors import ValidationFailed
from tracker.services import accounts, history, issues, orgs, projects
from tracker.services.access import OrgAccess, OrgRef, ProjectAccess, resolve_project
from tracker.services.accounts import Principal
from tracker.services.imports import (
    IMPORT_CHECKPOINT_PAGES,
    ImportComment,
    ImportIssue,
    import_issues,
)
from tracker.services.runtime import Core
from tracker.storage.changes import row_to_change, to_json
from tracker.storage.database import WAL_AUTOCHECKPOINT_PAGES


@dataclass
class World:
    core: Core
    actor: Actor
    org_id: str
    project_id: str
    access: ProjectAccess  # the owner, on project WEB
    batches: list[ChangeBatch]

    async def read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        async with self.core.tenants.lease(self.org_id) as db:
            return await db.read(lambda conn: conn.execute(sql, args).fetchall())


@pytest.fixture
async def world(core_factory: Any) -> World:
    core = await core_factory()
    user = await accounts.register(core, RegisterIn(email="imp@example.com", password="x" * 12))
    actor = Actor(user.id, "system")
    org = await orgs.create_org(core, Principal(user.id), OrgIn(name="Imp", slug="imp"), actor)
    org_ref = OrgRef(org.id, org.slug, org.name, OrgRole.OWNER)
    project = await projects.create_project(
        core, OrgAccess(user.id, org_ref), ProjectIn(name="W", key="WEB"), actor
    )
    project_ref = await resolve_project(core, org_ref, "WEB", user.id)
    batches: list[ChangeBatch] = []
    core.events.subscribe(batches.append)
    return World(
        core, actor, org.id, project.id, ProjectAccess(user.id, org_ref, project_ref), batches
    )


def sample(world: World, count: int) -> list[ImportIssue]:
    user = world.actor.user_id or ""
    return [
        ImportIssue(
            title=f"imported {n}", reporter=user, created_at=f"2025-01-0{n + 1}T00:00:00.000Z",
            updated_at="2025-02-01T00:00:00.000Z", stage="Resolved" if n else "Open",
            priority=PRIORITIES[n % 4], description=f"body {n}",
            resolved_at="2025-02-01T00:00:00.000Z" if n else None,
            comments=(ImportComment(user, f"second {n}", "2025-03-02T00:00:00.000Z"),
                      ImportComment(user, f"first {n}", "2025-03-01T00:00:00.000Z")),
        )
        for n in range(count)
    ]  # fmt: skip


async def test_rows_index_and_one_change_per_issue_and_comment(world: World) -> None:
    totals: list[int] = []
    imported = await import_issues(
        world.core, world.access, world.actor, sample(world, 5), batch_size=2,
        progress=totals.append,
    )  # fmt: skip
    assert imported == 5 and totals == [2, 4, 5]  # after each committed batch
    numbers = await world.read("SELECT number FROM issues ORDER BY number")
    assert [r[0] for r in numbers] == [1, 2, 3, 4, 5]
    changes = await world.read(
        "SELECT entity, op, count(*), count(DISTINCT batch) FROM changes "
        "WHERE entity IN ('issue', 'comment') GROUP BY entity, op ORDER BY entity"
    )
    assert [tuple(r) for r in changes] == [("comment", "create", 10, 3), ("issue", "create", 5, 3)]
    # comments are indexed oldest first, as the search view yields them
    indexed = await world.read("SELECT comments FROM issue_search_source ORDER BY row_id LIMIT 1")
    assert indexed[0][0] == "first 0\nsecond 0"
    hits = await world.read("SELECT count(*) FROM issue_search WHERE issue_search MATCH 'first'")
    assert hits[0][0] == 5
    await world.read("INSERT INTO issue_search (issue_search) VALUES ('integrity-check')")
    # the history index: every issue and comment change names its issue
    history_rows = await world.read(
        "SELECT count(*), count(DISTINCT ic.issue_id) FROM issue_changes ic "
        "JOIN changes c ON c.seq = ic.seq WHERE c.entity IN ('issue', 'comment') "
        "AND json_extract(c.meta, '$.issue') = ic.issue_id"
    )
    assert tuple(history_rows[0]) == (15, 5)
    counts = await world.read(
        "SELECT s.name, c.live FROM stage_counts c JOIN stages s ON s.id = c.stage_id "
        "WHERE c.live > 0 ORDER BY s.name"
    )
    assert [tuple(r) for r in counts] == [("Open", 1), ("Resolved", 4)]


async def test_logged_images_are_the_api_images_and_the_published_events(world: World) -> None:
    await import_issues(world.core, world.access, world.actor, sample(world, 4), batch_size=3)
    rows = await world.read(
        "SELECT * FROM changes WHERE entity IN ('issue', 'comment') ORDER BY seq"
    )
    published = [c for b in world.batches for c in b.changes if c.entity in ("issue", "comment")]
    assert [row_to_change(r) for r in rows] == published  # seq, id, image, meta: all equal
    assert len({c.id for c in published}) == len(published) == 12
    comments = {
        r["id"]: dict(r) for r in await world.read("SELECT * FROM comments ORDER BY row_id")
    }
    for change in published:
        if change.entity == "issue":
            shown = await issues.get_issue(world.core, world.access, change.new["number"])
            # what create_issue logs: the model, through the log's JSON
            assert change.new == json.loads(to_json(shown.model_dump()) or "")
        else:
            row = comments[change.entity_id]
            row.pop("row_id")
            assert change.new == row
    page = await history.issue_history(world.core, world.access, 1, PageQuery())
    assert [(i.entity, i.op) for i in page.items] == [
        ("comment", "create"), ("comment", "create"), ("issue", "create")
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "nul \x00 inside",  # JSON cannot carry it through SQLite: the executemany path
        'quotes " and \\ backslashes \\u0000 literally',
        "unicode: é ß 漢字 😀 \u2028 line separator",
        "tab\tand\nnewlines\r\n",
    ],
)
async def test_text_is_stored_exactly(world: World, text: str) -> None:
    user = world.actor.user_id or ""
    item = ImportIssue(
        title=f"t {text}", description=text, reporter=user, created_at="2025-01-01T00:00:00.000Z",
        updated_at="2025-01-01T00:00:00.000Z",
        comments=(ImportComment(user, f"c {text}", "2025-01-02T00:00:00.000Z"),),
    )  # fmt: skip
    plain = ImportIssue(
        title="plain", reporter=user, created_at="2025-01-01T00:00:00.000Z",
        updated_at="2025-01-01T00:00:00.000Z",
    )  # fmt: skip
    await import_issues(world.core, world.access, world.actor, [plain, item])
    stored = await world.read("SELECT title, description FROM issues WHERE number = 2")
    assert tuple(stored[0]) == (f"t {text}", text)
    body = await world.read("SELECT body FROM comments")
    assert body[0][0] == f"c {text}"
    image = await world.read("SELECT new FROM changes WHERE entity = 'issue' ORDER BY seq DESC")
    assert json.loads(image[0][0])["description"] == text
    await world.read("INSERT INTO issue_search (issue_search) VALUES ('integrity-check')")


async def test_an_unknown_stage_imports_nothing(world: World) -> None:
    items = sample(world, 3)
    items[1] = dataclasses.replace(items[1], stage="Nowhere")
    with pytest.raises(ValidationFailed) as failure:
        await import_issues(world.core, world.access, world.actor, items)
    assert "Nowhere" in str(failure.value.errors)
    assert (await world.read("SELECT count(*) FROM issues"))[0][0] == 0
    assert (await world.read("SELECT next_number FROM projects"))[0][0] == 1
    await import_issues(world.core, world.access, world.actor, sample(world, 1))
    assert (await world.read("SELECT number FROM issues"))[0][0] == 1


async def test_imported_issues_continue_after_existing_ones(world: World) -> None:
    """Numbers, row ids and board ranks carry on from what the API created."""
    from tracker.domain.models.issues import IssueCreate

    await issues.create_issue(world.core, world.access, IssueCreate(title="by hand"), world.actor)
    await import_issues(world.core, world.access, world.actor, sample(world, 2))
    rows = await world.read("SELECT number, rank, stage_id FROM issues ORDER BY number")
    assert [r["number"] for r in rows] == [1, 2, 3]
    open_ranks = [r["rank"] for r in rows if r["number"] in (1, 2)]  # both in Open
    assert open_ranks == sorted(open_ranks) and len(set(open_ranks)) == 2


def test_new_ids_are_distinct_uuid7() -> None:
    import uuid

    ids = new_ids(2000)
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)


async def test_a_failing_batch_stops_the_import_after_the_committed_ones(world: World) -> None:
    """Batches are pipelined; an error in a later one leaves the earlier ones committed
    and published, and nothing of its own."""
    items = [*sample(world, 2), dataclasses.replace(sample(world, 1)[0], stage="Nowhere")]
    with pytest.raises(ValidationFailed):
        await import_issues(world.core, world.access, world.actor, items, batch_size=1)
    assert [r[0] for r in await world.read("SELECT number FROM issues ORDER BY 1")] == [1, 2]
    published = [c.entity_id for b in world.batches for c in b.changes if c.entity == "issue"]
    stored = await world.read("SELECT id FROM issues ORDER BY number")
    assert published == [r[0] for r in stored]
    # the import's wider WAL checkpoint interval is back to the tenant default
    setting = await world.read("PRAGMA wal_autocheckpoint")
    assert setting[0][0] == WAL_AUTOCHECKPOINT_PAGES != IMPORT_CHECKPOINT_PAGES


async def test_a_batch_prepared_before_the_project_changed_is_prepared_again(
    world: World,
) -> None:
    """A card added to a column, or a stage renamed, between preparing a batch and
    writing it: the write re-reads the project and ranks/names follow the change."""
    from tracker.domain.models.issues import IssueCreate
    from tracker.domain.models.workflow import StagePatch
    from tracker.services import import_batches, workflow
    from tracker.services.changes import mutate

    async with world.core.tenants.lease(world.org_id) as db:
        plan = await db.read(lambda conn: import_batches.read_plan(conn, world.project_id))
    prepared = import_batches.prepare(sample(world, 1), plan)  # an Open issue
    by_hand = await issues.create_issue(
        world.core, world.access, IssueCreate(title="by hand"), world.actor
    )
    stages = {s.name: s for s in await workflow.list_stages(world.core, world.access)}
    await workflow.update_stage(
        world.core, world.access, stages["Resolved"].id, StagePatch(name="Fixed"), world.actor
    )
    written = await mutate(
        world.core, world.access, world.actor, lambda uow: import_batches.write(uow, prepared)
    )
    assert written.prepared is not prepared  # prepared again, on the project as it is now
    ranks = await world.read("SELECT number, rank FROM issues ORDER BY number")
    assert [r["number"] for r in ranks] == [by_hand.number, 2]
    assert ranks[0]["rank"] < ranks[1]["rank"]  # after the card added meanwhile
    (change,) = [c for c in import_batches.changes(written, world.actor) if c.entity == "issue"]
    logged = await world.read("SELECT new FROM changes WHERE entity_id = ?", (change.entity_id,))
    assert json.loads(logged[0][0]) == change.new and change.new["status"] == "Open"
    # the stage the batch names renamed away: the batch fails whole
    again = import_batches.prepare(sample(world, 1), written.prepared.next_plan)
    await workflow.update_stage(
        world.core, world.access, stages["Open"].id, StagePatch(name="Todo"), world.actor
    )
    with pytest.raises(ValidationFailed):
        await mutate(
            world.core, world.access, world.actor, lambda uow: import_batches.write(uow, again)
        )
    assert (await world.read("SELECT count(*) FROM issues"))[0][0] == 2


async def test_creates_racing_an_import_keep_numbers_and_ranks_unique(world: World) -> None:
    """API creates land between the import's batches (each prepared on an older snapshot
    of the project): every number is used once, no two cards share a rank."""
    import asyncio

    from tracker.domain.models.issues import IssueCreate

    created: list[int] = []
    importing = True

    async def keep_creating() -> None:
        while importing:
            issue = await issues.create_issue(
                world.core, world.access, IssueCreate(title="api"), world.actor
            )
            created.append(issue.number)

    creator = asyncio.ensure_future(keep_creating())
    await asyncio.sleep(0.05)  # the creator is running before the import starts
    items = [dataclasses.replace(i, stage="Open") for i in sample(world, 4)] * 10
    try:
        imported = await import_issues(world.core, world.access, world.actor, items, batch_size=4)
    finally:
        importing = False
        await creator
    assert imported == 40 and len(created) > 10
    rows = await world.read("SELECT number, rank, stage_id FROM issues")
    assert sorted(r["number"] for r in rows) == list(range(1, 41 + len(created)))
    assert len({(r["stage_id"], r["rank"]) for r in rows}) == len(rows)
    counted = await world.read(
        "SELECT c.live, (SELECT count(*) FROM issues i WHERE i.stage_id = c.stage_id) "
        "FROM stage_counts c"
    )
    assert all(live == actual for live, actual in counted)
