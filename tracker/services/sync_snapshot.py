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

_str = json.JSONEncoder(ensure_ascii=False).encode


def encode_token(epoch: str, seq: int, kind: int, after: str, project: str | None) -> str:
    raw = json.dumps([epoch, seq, kind, after, project], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, int, int, str, str | None]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        epoch, seq, kind, after, project = json.loads(raw)
        if not (isinstance(epoch, str) and isinstance(seq, int) and isinstance(kind, int)
                and isinstance(after, str) and (project is None or isinstance(project, str))
                and 0 <= kind < len(sync_sql.SNAPSHOT_KINDS) and seq >= 0):  # fmt: skip
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("page_token is not one this endpoint handed out") from None
    return epoch, seq, kind, after, project


async def page(
    core: Core, access: OrgAccess, query: proto.SnapshotQuery
) -> tuple[bytes, list[str]]:
    """One NDJSON page, and the project ids it covers (remembered as sent to the client)."""
    token = decode_token(query.page_token) if query.page_token else None
    user_id = access.user_id
    role = await feed.org_role_of(core, access.org.id, user_id) if user_id else None

    def work(conn: sqlite3.Connection) -> tuple[bytes, list[str], str]:
        assert user_id is not None
        client = check_client(conn, query.client_id, user_id)
        state = sync_state.load(conn)
        if token is None:
            seq, kind, after, project = change_sql.head(conn), 0, "", query.project
        else:
            epoch, seq, kind, after, project = token
            if epoch != state.epoch:
                reset = {"reset": {"reason": "epoch", "action": "resnapshot"}}
                return (json.dumps(reset) + "\n").encode(), [], client["id"]
        visible = visible_in(conn, user_id, role)
        in_scope = visible.ids_for(json.loads(client["scope"]))
        if project is not None:
            wanted = visible.ids_for([project])
            if not wanted:
                raise ValidationFailed([("query.project", f"no project {project} you can read")])
            in_scope = wanted
        ids = json.dumps(sorted(in_scope))
        lines = [_str({"snapshot_seq": seq, "epoch": state.epoch, "server_time": now_iso()})]
        left = query.limit
        kinds = sync_sql.SNAPSHOT_KINDS
        while kind < len(kinds) and left > 0:
            rows = sync_sql.snapshot_rows(conn, kinds[kind], ids, after, left)
            for row in rows:
                version = f',"version":{row[3]}' if len(row) > 3 else ""
                lines.append(
                    f'{{"entity":"{kinds[kind]}","id":{_str(row[0])},'
                    f'"project":{_str(row[1])}{version},"data":{row[2]}}}'
                )
            left -= len(rows)
            if left > 0:
                kind, after = kind + 1, ""
            else:
                after = rows[-1][0]
        if kind >= len(kinds):
            tail = {"next_page_token": None, "cursor": proto.make_cursor(state.epoch, seq)}
        else:
            token_out = encode_token(state.epoch, seq, kind, after, project)
            tail = {"next_page_token": token_out, "cursor": None}
        lines.append(_str(tail))
        return ("\n".join(lines) + "\n").encode(), sorted(in_scope), client["id"]

    body, covered, client_id = await read(core, access, work)
    if query.page_token is None and covered:
        await _remember(core, access, client_id, covered, query.project is not None)
    return body, covered


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
