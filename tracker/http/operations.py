"""The operator's parts of the front middleware and routes, assembled for `create_app`.

The observer (metrics, slow-request log) and the rate limiter are steps of the one
front middleware (tracker/http/front.py), each only when configured; `install` adds
app state and GET /metrics.
"""

from __future__ import annotations

from aiohttp import web

from tracker.http.clients import ADDRESSES, ClientAddresses
from tracker.http.metrics import Observer, RequestStats
from tracker.http.metrics import install as install_metrics
from tracker.http.ratelimit import RATE_LIMITER, Limiter, TokenBuckets
from tracker.settings import Settings


class Operations:
    """Metrics, the slow-request log and rate limiting, each only when configured."""

    def __init__(self, settings: Settings) -> None:
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.stats = RequestStats() if settings.metrics else None
        rps, burst = settings.rate_limit_rps, settings.rate_limit_burst
        self.buckets = TokenBuckets(rps, burst) if rps else None
        self.observer: Observer | None = None
        if self.stats is not None or settings.slow_request_ms:
            self.observer = Observer(self.stats, settings.slow_request_ms, self.addresses)
        self.limiter: Limiter | None = None
        if self.buckets is not None:
            self.limiter = Limiter(rps, burst, self.addresses, self.buckets)

    def install(self, app: web.Application) -> None:
        app[ADDRESSES] = self.addresses
        if self.buckets is not None:
            app[RATE_LIMITER] = self.buckets
        if self.stats is not None:
            install_metrics(app, self.stats)  # GET /metrics, outside the JSON table
