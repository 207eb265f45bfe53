"""Kanban board, sprint board and backlog: reads shaped for drawing, and backlog moves.

The board is read in one unit on the tenant's thread: the stages, a grouped
count over the issues_board index, then one index range scan per column
(LIMIT per column) and one query for the assignees of the cards shown. With
100k issues in 10 columns that is 12 short queries and no table scan.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from fractional_indexing import generate_key_between

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import utcnow
from tracker.domain.models.base import Page
from tracker.domain.models.issues import PRIORITIES
from tracker.domain.models.workflow import (
    BacklogMove,
    BacklogQuery,
    Board,
    BoardColumn,
    BoardQuery,
    Card,
    SprintBoardQuery,
    Stage,
)
from tracker.domain.query import Query, parse_query
from tracker.errors import NotFound, ValidationFailed
from tracker.services.access import ProjectAccess, read
from tracker.services.accounts import users_named
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.services.search import resolve_emails
from tracker.services.workflow import to_stage
from tracker.storage import boards as board_sql
from tracker.storage import issues as issue_sql
from tracker.storage import sprints as sprint_sql
from tracker.storage import stages as stage_sql
from tracker.storage.boards import CardRow, PageCardRow
from tracker.storage.search_filters import FilterContext, emails_in

CARD_FIELDS = ("id", "number", "title", "type", "priority", "stage_id", "estimate")


def _cards(conn: sqlite3.Connection, key: str, rows: Sequence[CardRow]) -> list[Card]:
    """Cards from trusted rows: constructed without re-validation (2,000 per board)."""
    assignees = board_sql.assignees_of(conn, [row[0] for row in rows])
    return [
        Card.model_construct(
            id=issue_id,
            key=f"{key}-{number}",
            number=number,
            title=title,
            type=type_,
            priority=priority,
            stage_id=stage_id,
            assignees=assignees.get(issue_id, []),
            estimate=estimate,
            rank=rank,
        )
        for issue_id, number, title, type_, priority, stage_id, estimate, rank in rows
    ]


async def project_board_json(core: Core, access: ProjectAccess, query: BoardQuery) -> bytes:
    """The board as JSON (the `Board` shape): every column in order with its count and its
    first `limit` cards by rank; cards are rendered by SQLite (see storage.boards)."""
    project = access.project
    ctx = await _filter_context(core, access, query.q)

    def run(conn: sqlite3.Connection) -> bytes:
        where = board_sql.query_predicate(conn, ctx[0], ctx[1]) if ctx else None
        counts = board_sql.column_counts(conn, project.id, where)
        parts = []
        for stage in stage_sql.list_stages(conn, project.id):
            items = board_sql.column_json(
                conn, project.key, project.id, stage["id"], query.limit, where
            )
            parts.append(f'{{"stage":{to_stage(stage).model_dump_json()},'
                         f'"count":{counts.get(stage["id"], 0)},"items":{items}}}')  # fmt: skip
        return ('{"columns":[' + ",".join(parts) + "]}").encode()

    if ctx is None:
        return await read(core, access, run)
    # user-driven: under the time limit
    return await read(core, access, run, time_limit_ms=core.settings.query_time_limit_ms)


async def _filter_context(
    core: Core, access: ProjectAccess, q: str | None
) -> tuple[Query, FilterContext] | None:
    """Parse `q` (400 with the position of a fault) and resolve the emails it names."""
    if not q or not q.strip():
        return None
    project = access.project
    query = parse_query(q)
    found = await resolve_emails(core, emails_in(query.filters))
    return query, FilterContext((project.id,), access.user_id, found, utcnow())


async def project_board(core: Core, access: ProjectAccess, query: BoardQuery) -> Board:
    """The board as a model (the CLI's table; HTTP sends project_board_json as it is)."""
    return Board.model_validate_json(await project_board_json(core, access, query))


async def sprint_board(
    core: Core, access: ProjectAccess, sprint_id: str, query: SprintBoardQuery
) -> Board:
    """The sprint's issues by stage, each column ranked like the project board."""
    project = access.project

    def run(conn: sqlite3.Connection) -> Board:
        if sprint_sql.sprint_by_id(conn, project.id, sprint_id) is None:
            raise NotFound("sprint not found")
        rows = board_sql.sprint_cards(conn, sprint_id)
        cards = _cards(conn, project.key, rows)
        return Board(columns=[
            BoardColumn(stage=to_stage(stage), count=sum(c.stage_id == stage["id"] for c in cards),
                        items=[c for c in cards if c.stage_id == stage["id"]][: query.limit])
            for stage in stage_sql.list_stages(conn, project.id)
        ])  # fmt: skip

    return await read(core, access, run)


# --- backlog ----------------------------------------------------------------------------------


async def backlog(core: Core, access: ProjectAccess, query: BacklogQuery) -> Page[Card]:
    """Open issues without a sprint in backlog order (moved ones by their rank, the rest
    by number after them); the cursor is the last card's key."""
    project = access.project
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else ""

    def run(conn: sqlite3.Connection) -> Page[Card]:
        rows = board_sql.backlog_page(conn, project.id, after, query.limit + 1)
        cards = _cards(conn, project.key, rows[: query.limit])
        more = len(rows) > query.limit
        return Page[Card](
            items=cards, next_cursor=encode_cursor([cards[-1].rank]) if more else None
        )

    return await read(core, access, run)


def _backlog_issue(conn: sqlite3.Connection, project_id: str, number: int, name: str) -> dict:
    row = issue_sql.issue_by_number(conn, project_id, number)
    stage = None if row is None else stage_sql.stage_by_id(conn, project_id, row["stage_id"])
    if row is None or stage is None or row["sprint_id"] is not None or stage["category"] == "done":
        raise ValidationFailed([(name, f"issue {number} is not in the backlog")])
    key = row["backlog_rank"] or board_sql.virtual_key(row["number"])
    return {**dict(row), "backlog_key": key}


async def move_in_backlog(
    core: Core, access: ProjectAccess, data: BacklogMove, actor: Actor
) -> Card:
    """Put a backlog issue right before or after another; only its own rank changes."""
    project = access.project
    if (data.before is None) == (data.after is None):
        raise ValidationFailed([("before", "give exactly one of `before` and `after`")])
    side, anchor = ("before", data.before) if data.before else ("after", data.after)
    assert anchor is not None

    def work(uow: UnitOfWork) -> Card:
        issue = _backlog_issue(uow.conn, project.id, data.issue, "issue")
        other = _backlog_issue(uow.conn, project.id, anchor, side)
        if issue["id"] == other["id"]:
            raise ValidationFailed([(side, "must be another issue")])
        rank = _key_beside(uow.conn, project.id, issue["row_id"], other["backlog_key"], side)
        version = board_sql.set_backlog_rank(uow.conn, issue["row_id"], rank)
        uow.record(Entity.ISSUE, issue["id"], Op.UPDATE, project=project.id, field="backlog_rank",
                   old=issue["backlog_rank"], new=rank, version=version,
                   issue=issue["id"])  # fmt: skip
        card = (*(issue[name] for name in CARD_FIELDS), rank)
        return _cards(uow.conn, project.key, [card])[0]

    return await mutate(core, access, actor, work)


def _key_beside(
    conn: sqlite3.Connection, project_id: str, row_id: int, anchor: str, side: str
) -> str:
    """A key right before/after `anchor`, strictly between it and its neighbour in the
    project's whole key space; below the next issue's number-derived key at the bottom."""
    below = side == "before"
    neighbour = board_sql.key_neighbour(conn, project_id, anchor, row_id, below=below)
    if below:
        return generate_key_between(neighbour, anchor)
    ceiling = neighbour or board_sql.virtual_key(board_sql.next_number(conn, project_id))
    return generate_key_between(anchor, ceiling)


# --- the web UI's board page ------------------------------------------------------------------

#: Swim lane choices of the board page (a GET parameter there).
LANES = ("assignee", "priority", "epic")


@dataclass(frozen=True)
class PageColumn:
    """A column of the board page: the stage, its count, its first cards as tuples."""

    stage: Stage
    count: int
    cards: list[PageCardRow]


@dataclass(frozen=True)
class PageBoard:
    """The board page's data; `lanes` is [(lane key or None, label)] in display order."""

    columns: list[PageColumn]
    lanes: list[tuple[str | None, str]] | None


async def board_page(
    core: Core, access: ProjectAccess, query: BoardQuery, lanes: str | None = None
) -> PageBoard:
    """The project board for the web UI: the same columns, counts, filter and ranking as
    `project_board_json`, with the cards as tuples (plus a swim lane key per card)."""
    if lanes is not None and lanes not in LANES:
        raise ValidationFailed([("lanes", f"one of {', '.join(LANES)}")])
    project = access.project
    ctx = await _filter_context(core, access, query.q)

    def run(conn: sqlite3.Connection) -> tuple[list[PageColumn], dict[str, tuple[int, str]]]:
        where = board_sql.query_predicate(conn, ctx[0], ctx[1]) if ctx else None
        counts = board_sql.column_counts(conn, project.id, where)
        columns = [
            PageColumn(
                to_stage(stage),
                counts.get(stage["id"], 0),
                board_sql.column_page_cards(
                    conn, project.id, stage["id"], query.limit, where, lanes
                ),
            )
            for stage in stage_sql.list_stages(conn, project.id)
        ]
        epics: dict[str, tuple[int, str]] = {}
        if lanes == "epic":
            ids = sorted({c[4] for col in columns for c in col.cards if c[4]})
            epics = board_sql.epic_labels(conn, ids)
        return columns, epics

    limit_ms = None if ctx is None else core.settings.query_time_limit_ms  # user-driven
    columns, epics = await read(core, access, run, time_limit_ms=limit_ms)
    if lanes is None:
        return PageBoard(columns, None)
    keys = {c[4] for col in columns for c in col.cards}
    return PageBoard(columns, await _lane_labels(core, project.key, lanes, keys, epics))


async def _lane_labels(
    core: Core, project_key: str, lanes: str, keys: set[str | None],
    epics: dict[str, tuple[int, str]],
) -> list[tuple[str | None, str]]:  # fmt: skip
    """Lanes in display order, the card-less ones (None) last."""
    named: list[tuple[str | None, str]]
    if lanes == "priority":
        named = [(p, p) for p in PRIORITIES if p in keys]
        named += sorted((k, k) for k in keys if k and k not in PRIORITIES)
        return named
    if lanes == "assignee":
        users = await users_named(core, [k for k in keys if k])
        named = sorted(
            ((k, users[k].display_name or users[k].email if k in users else "(former member)")
             for k in keys if k),
            key=lambda lane: lane[1].casefold(),
        )  # fmt: skip
        return named + ([(None, "Unassigned")] if None in keys else [])
    ordered = sorted((k for k in keys if k), key=lambda k: epics.get(k, (0, ""))[0])
    named = [(k, f"{project_key}-{epics[k][0]} {epics[k][1]}" if k in epics else "(epic)")
             for k in ordered]  # fmt: skip
    return named + ([(None, "No epic")] if None in keys else [])
