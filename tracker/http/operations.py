"""The operator's middlewares and routes, assembled in one place for `create_app`.

`outer` goes before the error boundary (the observer must see every final status),
`inner` after CORS (the rate limiter answers its 429 as a problem with the request id,
and CORS headers still reach a browser); `install` adds app state and GET /metrics.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from tracker.http.clients import ADDRESSES, ClientAddresses
from tracker.http.metrics import RequestStats, observe
from tracker.http.metrics import install as install_metrics
from tracker.http.ratelimit import RATE_LIMITER, TokenBuckets, rate_limit
from tracker.settings import Settings


class Operations:
    """Metrics, the slow-request log and rate limiting, each only when configured."""

    def __init__(self, settings: Settings) -> None:
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.stats = RequestStats() if settings.metrics else None
        rps, burst = settings.rate_limit_rps, settings.rate_limit_burst
        self.buckets = TokenBuckets(rps, burst) if rps else None
        self.outer: list[Middleware] = []
        if self.stats is not None or settings.slow_request_ms:
            self.outer.append(observe(self.stats, settings.slow_request_ms, self.addresses))
        self.inner: list[Middleware] = []
        if self.buckets is not None:
            self.inner.append(rate_limit(rps, burst, self.addresses, self.buckets))

    def install(self, app: web.Application) -> None:
        app[ADDRESSES] = self.addresses
        if self.buckets is not None:
            app[RATE_LIMITER] = self.buckets
        if self.stats is not None:
            install_metrics(app, self.stats)  # GET /metrics, outside the JSON table
