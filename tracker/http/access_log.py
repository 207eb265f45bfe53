"""The access log `rhythm serve` writes: one line per request, text or JSON.

aiohttp calls it after each response with the time taken; the fields are the same
as the slow-request log's (request id, user, org, route template, status, duration,
client address). With RHYTHM_LOG_FORMAT=json the formatter (tracker/logs.py) writes
the fields as JSON members; as text they follow the classic line.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from tracker.http.clients import ADDRESSES, ClientAddresses
from tracker.http.metrics import request_fields


class AccessLogger(AbstractAccessLogger):
    """One structured line per request, with its request id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        addresses: ClientAddresses | None = None
        if isinstance(request, web.Request):
            addresses = request.app.get(ADDRESSES)
        fields = request_fields(request, response.status, time, addresses)
        self.logger.info(
            "%s %s %s %s %.1fms rid=%s user=%s org=%s route=%s",
            fields["remote"], request.method, request.path_qs, response.status, time * 1000,
            fields["request_id"], fields["user"] or "-", fields["org"] or "-", fields["route"],
            extra={"fields": fields},
        )  # fmt: skip

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
