"""Sync snapshot: the replica's first copy, in NDJSON pages keyset-ordered by
(kind, id), all pages answering for one `snapshot_seq` (docs/sync.md, "GET snapshot").

Pages need no long-lived read transaction: the first page fixes `snapshot_seq`
(the head then) and the page token carries it with the epoch and the keyset
position. Rows written while the replica pages are replayed by the pull that
follows from `snapshot_seq`; every change row carries absolute values, so the
replica ends in the server's state. Each page re-checks the user's visibility.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from tracker.domain import sync as proto
from tracker.domain.ids import now_iso
from tracker.errors import BadRequest, ValidationFailed
from tracker.services import feed
from tracker.services.access import OrgAccess, read
from tracker.services.runtime import Core
from tracker.services.sync_clients import check_client, visible_in
from tracker.services.sync_pull import remember_projects
from tracker.storage import changes as change_sql
from tracker.storage import sync as sync_sql
from tracker.storage import sync_state
from tracker.storage import users as user_sql

_str = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(frozen=True)
class Position:
    """Where a snapshot stands: the kind, and within it the project and (number, id)
    for per-issue kinds, or just the last id for catalogues."""

    kind: int = 0
    project: str = ""
    number: int = 0
    after: str = ""


#: The list of kinds a token's kind index refers to. Tokens of an older list (the
#: catalogues before sprints, fields and members; no format entry) read as from another
#: epoch: the client is told to start over rather than land on a different kind.
TOKEN_FORMAT = 2


def encode_token(epoch: str, seq: int, at: Position, only: str | None) -> str:
    raw = json.dumps([epoch, seq, at.kind, at.project, at.number, at.after, only, TOKEN_FORMAT],
                     separators=(",", ":"))  # fmt: skip
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, int, Position, str | None]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list):
            raise ValueError
        if len(parts) == 7:  # an older server's token: its kinds were numbered otherwise
            parts = ["", *parts[1:], TOKEN_FORMAT]
        epoch, seq, kind, project, number, after, only, version = parts
        if version != TOKEN_FORMAT:
            epoch = ""
        if not (isinstance(epoch, str) and isinstance(seq, int) and isinstance(kind, int)
                and isinstance(project, str) and isinstance(number, int)
                and isinstance(after, str) and (only is None or isinstance(only, str))
                and 0 <= kind < len(KINDS) and seq >= 0 and 0 <= number < 2**62):  # fmt: skip
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("page_token is not one this endpoint handed out") from None
    return epoch, seq, Position(kind, project, number, after), only


KINDS = sync_sql.SNAPSHOT_KINDS
_CATALOGUES = len(sync_sql.CATALOGUE_SQL)


def _line(kind: str, row: sqlite3.Row) -> str:
    version = f',"version":{row[3]}' if len(row) > 3 and row[3] is not None else ""
    return (f'{{"entity":"{kind}","id":{_str(row[0])},"project":{_str(row[1])}'
            f'{version},"data":{row[2]}}}')  # fmt: skip


def fill(
    conn: sqlite3.Connection, projects: list[str], at: Position, limit: int, lines: list[str]
) -> Position | None:
    """Append up to `limit` entity lines from `at`; the next position, None at the end."""
    ids = json.dumps(projects)
    while at.kind < len(KINDS) and limit > 0:
        kind = KINDS[at.kind]
        if at.kind < _CATALOGUES:
            rows = sync_sql.catalogue_rows(conn, kind, ids, at.after, limit)
            lines.extend(_line(kind, row) for row in rows)
            limit -= len(rows)
            at = Position(at.kind + 1) if limit > 0 else Position(at.kind, after=rows[-1][0])
            continue
        later = [p for p in projects if p >= at.project]
        if not later:
            at = Position(at.kind + 1)
            continue
        project = later[0]
        number, after = (at.number, at.after) if project == at.project else (0, "")
        rows = sync_sql.per_issue_rows(conn, kind, project, number, after, limit)
        lines.extend(_line(kind, row) for row in rows)
        limit -= len(rows)
        if limit > 0:  # this project is done for this kind: the next one
            at = Position(at.kind, project + "\x00")
        else:
            at = Position(at.kind, project, int(rows[-1][4]), str(rows[-1][0]))
    return at if at.kind < len(KINDS) else None


async def page(
    core: Core, access: OrgAccess, query: proto.SnapshotQuery
) -> tuple[bytes, list[str]]:
    """One NDJSON page, and the project ids it covers (remembered as sent to the client)."""
    token = decode_token(query.page_token) if query.page_token else None
    user_id = access.user_id
    role = await feed.org_role_of(core, access.org.id, user_id) if user_id else None
    ttl = core.settings.sync_client_ttl_days

    def work(conn: sqlite3.Connection) -> tuple[bytes, list[str], str]:
        assert user_id is not None
        client = check_client(conn, query.client_id, user_id, ttl)
        state = sync_state.load(conn)
        if token is None:
            seq, at, only = change_sql.head(conn), Position(), query.project
        else:
            epoch, seq, at, only = token
            if epoch != state.epoch:
                reset = {"reset": {"reason": "epoch", "action": "resnapshot"}}
                return (json.dumps(reset) + "\n").encode(), [], client["id"]
        visible = visible_in(conn, user_id, role)
        in_scope = visible.ids_for(json.loads(client["scope"]))
        if only is not None:
            wanted = visible.ids_for([only])
            if not wanted:
                raise ValidationFailed([("query.project", f"no project {only} you can read")])
            in_scope = wanted
        lines = [_str({"snapshot_seq": seq, "epoch": state.epoch, "server_time": now_iso()})]
        following = fill(conn, sorted(in_scope), at, query.limit, lines)
        if following is None:
            tail = {"next_page_token": None, "cursor": proto.make_cursor(state.epoch, seq)}
        else:
            tail = {"next_page_token": encode_token(state.epoch, seq, following, only),
                    "cursor": None}  # fmt: skip
        lines.append(_str(tail))
        return ("\n".join(lines) + "\n").encode(), sorted(in_scope), client["id"]

    body, covered, client_id = await read(core, access, work)
    if any(f'{{"entity":"{kind}"'.encode() in body for kind in sync_sql.PEOPLE_KINDS):
        body = await _with_names(core, body)
    if query.page_token is None and covered:
        await _remember(core, access, client_id, covered, query.project is not None)
    return body, covered


async def _with_names(core: Core, body: bytes) -> bytes:
    """Project member and people lines get the person's email and display name, as
    GET .../members and .../assignees show them to anyone who may read the project (never
    more: no hash, no token). Users live in the system database: a second read."""
    lines = body.decode().split("\n")
    found: dict[int, tuple[dict[str, Any], str]] = {}
    for n, text in enumerate(lines):
        for kind, key in sync_sql.PEOPLE_KINDS.items():
            if text.startswith(f'{{"entity":"{kind}"'):
                found[n] = (json.loads(text), key)
    ids = sorted({line["data"][key] for line, key in found.values()})
    rows = await core.system.read(lambda conn: user_sql.users_by_ids(conn, ids))
    people = {r["id"]: r for r in rows}
    for n, (line, key) in found.items():
        person = people.get(line["data"][key])
        line["data"]["email"] = person["email"] if person else ""
        line["data"]["display_name"] = person["display_name"] if person else ""
        lines[n] = _str(line)
    return "\n".join(lines).encode()


async def _remember(
    core: Core, access: OrgAccess, client_id: str, covered: list[str], partial: bool
) -> None:
    """A full snapshot replaces the set of projects the replica holds; a one-project
    snapshot (after `scope.added`) adds to it."""
    if partial:

        def current(conn: sqlite3.Connection) -> list[str]:
            row = sync_sql.client(conn, client_id)
            return [] if row is None else list(json.loads(row["sent_projects"]))

        covered = sorted(set(covered) | set(await read(core, access, current)))
    await remember_projects(core, access, client_id, covered)
