"""The project board and the card move (the same `update_issue` call as the API's PATCH)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from html import escape

from aiohttp import web
from markupsafe import Markup

from tracker.domain.models.issues import IssuePatch
from tracker.domain.models.workflow import BoardQuery
from tracker.domain.permissions import Permission
from tracker.errors import QuerySyntaxError, ValidationFailed
from tracker.services import boards, issues
from tracker.services.boards import PageCardRow
from tracker.ui.app import Ctx, page, parse_form


@lru_cache(maxsize=512)
def _ends(type_: str, priority: str) -> tuple[str, str]:
    """A card's markup before its number and after its title, escaped once per (type,
    priority): a handful of pairs serve every card of every board."""
    word = escape(priority)
    return (f'<li class="card priority-{word}" data-number="',
            f"</span><small>{escape(type_)} · {word}</small></li>")  # fmt: skip


def cards_html(cards: list[PageCardRow], project_key: str, issues_url: str) -> Markup:
    """One column's cards as HTML, every value escaped here. A board shows up to 2,000
    cards: rendering each field through the template engine cost ~13 ms a page, and
    decoding the API's card JSON first ~1 ms; one f-string per card row is a fraction."""
    url, key = escape(issues_url), escape(project_key) + "-"
    parts: list[str] = []
    add = parts.append
    for number, title, type_, priority, _ in cards:
        head, tail = _ends(type_, priority)
        n = str(int(number))  # formatted once, used four times (half the loop's time)
        add(f'{head}{n}" id="card-{key}{n}"><a href="{url}{n}">{key}{n}</a>'
            f'<span class="title">{escape(title)}{tail}')  # fmt: skip
    return Markup("".join(parts))


@dataclass(frozen=True)
class Cell:
    """One column of one row of the page (the whole board, or one swim lane)."""

    stage: str
    count: int
    cards: Markup


Row = tuple[str, list[Cell]]


def rows_of(board: boards.PageBoard, project_key: str, issues_url: str) -> list[Row]:
    """[(lane label, cells)]: one unlabelled row without lanes, else one row per lane."""
    if board.lanes is None:
        return [("", [Cell(c.stage.name, c.count, cards_html(c.cards, project_key, issues_url))
                      for c in board.columns])]  # fmt: skip
    rows = []
    for lane, label in board.lanes:
        cells = []
        for column in board.columns:
            mine = [card for card in column.cards if card[4] == lane]
            cells.append(Cell(column.stage.name, len(mine),
                              cards_html(mine, project_key, issues_url)))  # fmt: skip
        rows.append((label, cells))
    return rows


@page(Permission.PROJECT_READ)
async def board_page(ctx: Ctx) -> web.StreamResponse:
    q = ctx.request.query.get("q", "")
    limit = ctx.request.query.get("limit", "50")
    lanes = ctx.request.query.get("lanes") or None
    query = parse_form(BoardQuery, {"q": q or None, "limit": int(limit) if limit.isdigit() else 0})
    project = ctx.access.project
    try:
        board = await boards.board_page(ctx.core, ctx.access, query, lanes)
        fault = None
    except QuerySyntaxError as error:
        board, fault = None, error
    issues_url = f"/o/{ctx.access.org.slug}/p/{project.key}/issues/"
    return ctx.render(
        "board.html",
        status=400 if fault else 200,
        board=board,
        rows=rows_of(board, project.key, issues_url) if board else [],
        q=q,
        lanes=lanes or "",
        lane_choices=boards.LANES,
        fault=fault,
        may_move=ctx.may(Permission.ISSUE_UPDATE),
        may_create=ctx.may(Permission.ISSUE_CREATE),
    )


@page(Permission.ISSUE_CREATE)  # the API's PATCH permission; the service checks the rest
async def move_card(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    try:
        number = int(form.get("issue", ""))
        values: dict[str, object] = {"status": form.get("status", "")}
        for side in ("before", "after"):
            if form.get(side):
                values[side] = int(form[side])
    except ValueError:
        raise ValidationFailed([("issue", "issue, before and after are issue numbers")]) from None
    patch = parse_form(IssuePatch, values)
    issue = await issues.update_issue(ctx.core, ctx.access, number, patch, ctx.actor)
    return web.json_response({"key": issue.key, "status": issue.status})


ROUTES = [
    ("GET", "/o/{org}/p/{project}", board_page),
    ("POST", "/o/{org}/p/{project}/move", move_card),
]
