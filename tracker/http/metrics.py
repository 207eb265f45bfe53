"""`GET /metrics` and the per-request observation behind it (docs/operations.md).

The request histogram is kept in plain dicts and lists, not prometheus-client
objects, and turned into metric families only when scraped: a request costs one
`perf_counter` pair, a dict lookup and two increments (the health route must keep
>= 95 % of its speed with metrics on; `python -m bench.cases_metrics`). Series are
keyed by route *template* (`/api/v1/orgs/{org}`), never the raw path, so their
number is bounded by the route table times the statuses seen.

The same observer writes the slow-request log. The front middleware (front.py) calls
it last, after the error boundary, so it sees the final status of every request.

Who may scrape: a loopback client (its address resolved as in clients.py, so a
trusted proxy's forwarded client counts, not the proxy), or anyone presenting
`Authorization: Bearer <RHYTHM_METRICS_TOKEN>`; everyone else gets a 403 problem.
"""

from __future__ import annotations

import bisect
import hmac
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric

from tracker.errors import Forbidden
from tracker.http.clients import ADDRESSES, ClientAddresses, is_loopback, user_of
from tracker.http.keys import CORE, SETTINGS
from tracker.http.middlewares import REQUEST_ID, REQUEST_ID_HEADER
from tracker.http.problems import problem_response
from tracker.http.ratelimit import RATE_LIMITER
from tracker.services.metrics import CoreCollector

log = logging.getLogger("tracker.slow_request")

METRICS_PATH = "/metrics"
#: Request duration bucket bounds, seconds.
BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
UNMATCHED = "unmatched"  # the template of requests no route matched (404/405)
#: Methods counted by name; any other (clients may send any token) is "other", so a
#: client cannot grow the series without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestStats:
    """Per (method, route template, status): bucket counts, then the sum of seconds."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, int], list[float]] = {}
        self._templates: dict[object, str] = {}  # resource -> template, once per route

    def template(self, request: web.Request) -> str:
        resource = request.match_info.route.resource
        known = self._templates.get(resource)
        if known is None:
            known = resource.canonical if resource is not None else UNMATCHED
            self._templates[resource] = known
        return known

    def observe(self, method: str, template: str, status: int, seconds: float) -> None:
        key = (method, template, status)
        row = self.series.get(key)
        if row is None:
            row = self.series[key] = [0.0] * (len(BUCKETS) + 2)
        row[bisect.bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        labels = ["method", "route", "status"]
        durations = HistogramMetricFamily(
            "rhythm_http_request_duration_seconds",
            "HTTP request duration by route template and status.",
            labels=labels,
        )
        totals = CounterMetricFamily(
            "rhythm_http_requests", "HTTP requests by route template and status.", labels=labels
        )
        for (method, template, status), row in sorted(self.series.items()):
            names = [method, template, str(status)]
            cumulative, buckets = 0.0, []
            for bound, count in zip((*map(repr, BUCKETS), "+Inf"), row, strict=False):
                cumulative += count
                buckets.append((bound, cumulative))
            durations.add_metric(names, buckets, sum_value=row[-1])
            totals.add_metric(names, cumulative)
        yield durations
        yield totals


class _Collector:
    """Adapts a zero-argument generator function to prometheus' Collector protocol."""

    def __init__(self, collect: Any) -> None:
        self.collect = collect


METRICS_STATS = web.AppKey("metrics_stats", RequestStats)
METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


class Observer:
    """Times every request: into `stats` (None: metrics off) and the slow-request log.

    Called by the front middleware (tracker/http/front.py) with the final status."""

    def __init__(
        self, stats: RequestStats | None, slow_request_ms: int, addresses: ClientAddresses
    ) -> None:
        self.stats = stats
        self.slow_s = slow_request_ms / 1000 if slow_request_ms > 0 else float("inf")
        self.addresses = addresses

    def done(self, request: web.Request, status: int, seconds: float) -> None:
        stats = self.stats
        if stats is not None:
            method = request.method
            stats.observe(method if method in METHODS else "other", stats.template(request),
                          status, seconds)  # fmt: skip
        if seconds >= self.slow_s and status != 101:  # a WebSocket lives as long as it likes
            fields = request_fields(request, status, seconds, self.addresses)
            log.warning(
                "slow request: %s %s %s %.1f ms rid=%s", request.method, request.path, status,
                seconds * 1000, fields["request_id"], extra={"fields": fields},
            )  # fmt: skip


def request_fields(
    request: web.BaseRequest, status: int, seconds: float, addresses: ClientAddresses | None
) -> dict[str, Any]:
    """What a log line says about a request (access log, slow-request log)."""
    match_info = request.match_info if isinstance(request, web.Request) else None
    resource = match_info.route.resource if match_info is not None else None
    return {
        "request_id": request.get(REQUEST_ID) or request.headers.get(REQUEST_ID_HEADER),
        "method": request.method,
        "path": request.path,
        "route": resource.canonical if resource is not None else UNMATCHED,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "user": user_of(request) if isinstance(request, web.Request) else None,
        "org": match_info.get("org") if match_info is not None else None,
        "remote": addresses.of(request) if addresses is not None else request.remote,
    }


def install(app: web.Application, stats: RequestStats) -> None:
    """Serve /metrics on `app` (outside the JSON route table: not an API operation)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(stats.collect))
    registry.register(CoreCollector(lambda: app.get(CORE)))
    registry.register(_Collector(lambda: _limiter_metrics(app)))
    ProcessCollector(registry=registry)  # RSS, CPU, open file descriptors
    app[METRICS_STATS] = stats
    app[METRICS_REGISTRY] = registry
    app.router.add_get(METRICS_PATH, metrics_page)


def _limiter_metrics(app: web.Application) -> Iterator[Metric]:
    buckets = app.get(RATE_LIMITER)
    if buckets is None:
        return
    refused = CounterMetricFamily(
        "rhythm_rate_limited", "Requests refused 429 by the rate limiter.", labels=["key"]
    )
    for kind, count in buckets.refused.items():
        refused.add_metric([kind], count)
    yield refused
    yield GaugeMetricFamily("rhythm_rate_limit_buckets", "Token buckets held.", value=len(buckets))


async def metrics_page(request: web.Request) -> web.StreamResponse:
    if not _may_scrape(request, request.app[SETTINGS].metrics_token):
        return problem_response(
            Forbidden("metrics are open to loopback clients, or with the metrics token"),
            request.get(REQUEST_ID),
        )
    # generate_latest walks a few hundred series: ~ms, fine on the loop at scrape rates
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _may_scrape(request: web.Request, token: str | None) -> bool:
    if is_loopback(request.app[ADDRESSES].of(request)):
        return True
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    presented = given.strip().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(presented, token.encode())
