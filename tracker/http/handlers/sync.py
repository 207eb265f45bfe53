"""Offline sync endpoints under /orgs/{org}/sync/ (the protocol: docs/sync.md).

Every route checks the `Rhythm-Sync: protocol=N; schema=M` header (absent means
current): older than the server accepts is 426 with words, newer is 400.
"""

from __future__ import annotations

from aiohttp import web

from tracker.domain import sync as proto
from tracker.domain.permissions import Permission
from tracker.errors import BadRequest, PayloadTooLarge, SyncVersionTooNew, UpgradeRequired
from tracker.http.binding import Call, Route, json_response
from tracker.services import sync_clients, sync_pull, sync_push, sync_snapshot
from tracker.services.access import OrgAccess

BASE = "/orgs/{org}/sync"
NDJSON = "application/x-ndjson"
_VERSION_ERRORS = (400, 426)


def check_versions(protocol: int, schema: int) -> None:
    """426 for a client older than the server accepts, 400 for a newer one."""
    try:
        proto.check_versions(protocol, schema)
    except proto.SyncVersionError as exc:
        extra = {f"{'min' if exc.too_old else 'max'}_{exc.what}": exc.bound}
        if exc.too_old:
            raise UpgradeRequired(f"{exc} — upgrade rhythm to sync with this server",
                                  **extra) from None  # fmt: skip
        raise SyncVersionTooNew(f"{exc} — this server is older than your rhythm", **extra) from None


def header_versions(call: Call[OrgAccess]) -> None:
    try:
        protocol, schema = proto.parse_header(call.request.headers.get(proto.HEADER))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    check_versions(protocol, schema)


async def info(call: Call[OrgAccess]) -> web.Response:
    header_versions(call)
    out = await sync_clients.info(call.core, call.access)
    return json_response(out.model_dump(mode="json", by_alias=True))  # `schema`, not `schema_`


async def register(call: Call[OrgAccess]) -> web.Response:
    header_versions(call)
    check_versions(proto.PROTOCOL_MAX, call.body.schema_)
    out = await sync_clients.register(call.core, call.access, call.body)
    return json_response(out, status=201)


async def update(call: Call[OrgAccess]) -> web.Response:
    header_versions(call)
    out = await sync_clients.update(call.core, call.access, call.params["client_id"], call.body)
    return json_response(out)


async def revoke(call: Call[OrgAccess]) -> web.Response:
    header_versions(call)
    await sync_clients.revoke(call.core, call.access, call.params["client_id"])
    return web.Response(status=204)


async def snapshot(call: Call[OrgAccess]) -> web.Response:
    header_versions(call)
    body, _ = await sync_snapshot.page(call.core, call.access, call.query)
    return web.Response(body=body, content_type=NDJSON)


async def pull(call: Call[OrgAccess]) -> web.Response:
    header_versions(call)
    body = await sync_pull.pull(call.core, call.access, call.query)
    return web.Response(body=body, content_type="application/json")


async def push(call: Call[OrgAccess]) -> web.Response:
    header_versions(call)
    body: proto.PushIn = call.body
    check_versions(body.protocol, body.schema_)
    length = call.request.content_length
    if length is not None and length > proto.PUSH_MAX_BYTES:
        raise PayloadTooLarge(f"a push carries at most {proto.PUSH_MAX_BYTES} bytes")
    return json_response(await sync_push.push(call.core, call.access, body))


ROUTES = [
    Route("GET", BASE + "/info", info, Permission.ORG_READ,
          "Sync: versions, epoch, head, readable projects, limits",
          response=proto.InfoOut, errors=_VERSION_ERRORS, tag="sync"),
    Route("POST", BASE + "/clients", register, Permission.ORG_READ,
          "Sync: register a replica (client id) with its scope", body=proto.ClientIn,
          response=proto.ClientOut, status=201, errors=_VERSION_ERRORS, tag="sync"),
    Route("PUT", BASE + "/clients/{client_id}", update, Permission.ORG_READ,
          "Sync: change a replica's scope", body=proto.ClientPatch, response=proto.ClientOut,
          errors=_VERSION_ERRORS, tag="sync"),
    Route("DELETE", BASE + "/clients/{client_id}", revoke, Permission.ORG_READ,
          "Sync: revoke a replica (its later requests get 403)", status=204,
          errors=_VERSION_ERRORS, tag="sync"),
    Route("GET", BASE + "/snapshot", snapshot, Permission.ORG_READ,
          "Sync: one NDJSON page of the replica's first copy", query=proto.SnapshotQuery,
          produces=NDJSON, errors=_VERSION_ERRORS, tag="sync"),
    Route("GET", BASE + "/pull", pull, Permission.ORG_READ,
          "Sync: changes after a cursor, as the replica's user may see them now",
          query=proto.PullQuery, response=proto.PullOut, errors=_VERSION_ERRORS, tag="sync"),
    Route("POST", BASE + "/push", push, Permission.ORG_READ,
          "Sync: apply a replica's mutations exactly once, in order", body=proto.PushIn,
          response=proto.PushOut, errors=(*_VERSION_ERRORS, 409), tag="sync"),
]  # fmt: skip
