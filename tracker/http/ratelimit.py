"""Rate limiting: a token bucket per user (per client address when anonymous), in memory.

Each bucket holds up to RHYTHM_RATE_LIMIT_BURST tokens and refills at
RHYTHM_RATE_LIMIT_RPS per second; a request takes one. An empty bucket answers 429
with `Retry-After` (seconds until a token is back). Every limited response carries
the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers):
`RateLimit-Policy: "default";q=<burst>;w=<seconds to refill a bucket>` and
`RateLimit: "default";r=<tokens left>;t=<seconds until the bucket is full>`.

The user is read from a valid access token (Bearer header or the UI's cookie); a
missing or invalid token falls back to the client address (clients.py: proxies).
Health, /metrics and static files are exempt. Buckets idle long enough to be full
again are dropped, so memory follows the active clients (docs/operations.md).
"""

from __future__ import annotations

import math
import time

from aiohttp import web
from multidict import istr

from tracker.errors import TooManyRequests
from tracker.http.clients import ClientAddresses, user_of
from tracker.http.problems import problem_response

#: Route templates (suffixes, so a plugin mount prefix does not matter) never limited.
EXEMPT_SUFFIXES = ("/health/live", "/health/ready", "/metrics")
EXEMPT_PARTS = ("/static/", "/docs/assets/")
POLICY_HEADER, STATE_HEADER = istr("RateLimit-Policy"), istr("RateLimit")  # no re-folding
PRUNE_EVERY = 30.0  # seconds between sweeps of full buckets
MAX_BUCKETS = 200_000  # beyond this, a sweep runs at once (a flood of new addresses)


class TokenBuckets:
    """Buckets by key: [tokens, last refill time]. Event-loop only (no lock needed)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.refill_seconds = burst / rate  # an empty bucket is full again after this
        self._buckets: dict[str, list[float]] = {}
        self._next_prune = time.monotonic() + PRUNE_EVERY
        self.refused = {"user": 0, "address": 0}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """Take a token; returns the tokens left, or a negative number when refused
        (the tokens missing: -(1 - tokens))."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if now >= self._next_prune or len(self._buckets) >= MAX_BUCKETS:
                self.prune(now)
            self._buckets[key] = [self.burst - 1.0, now]
            return self.burst - 1.0
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return bucket[0]
        bucket[0] = tokens
        return tokens - 1.0

    def prune(self, now: float) -> None:
        """Drop buckets that are full again (idle for a whole refill); they would be
        recreated full. Still over the cap: drop the longest idle half."""
        self._next_prune = now + PRUNE_EVERY
        horizon = now - self.refill_seconds
        self._buckets = {k: b for k, b in self._buckets.items() if b[1] > horizon}
        if len(self._buckets) >= MAX_BUCKETS:
            keep = sorted(self._buckets.items(), key=lambda kv: kv[1][1])[MAX_BUCKETS // 2 :]
            self._buckets = dict(keep)


RATE_LIMITER = web.AppKey("rate_limiter", TokenBuckets)


class Limiter:
    """The per-request side, called by the front middleware (tracker/http/front.py)
    inside the request id and CORS, so a 429 carries both."""

    def __init__(self, rate: float, burst: int, addresses: ClientAddresses,
                 buckets: TokenBuckets) -> None:  # fmt: skip
        self.rate = rate
        self.burst = burst
        self.addresses = addresses
        self.buckets = buckets
        self.policy = f'"default";q={burst};w={math.ceil(burst / rate)}'
        self._exempt: dict[object, bool] = {}  # resource -> exempt?, decided once per route

    def is_exempt(self, request: web.Request) -> bool:
        resource = request.match_info.route.resource
        known = self._exempt.get(resource)
        if known is None:
            path = resource.canonical if resource is not None else ""
            known = path.endswith(EXEMPT_SUFFIXES) or any(p in path for p in EXEMPT_PARTS)
            self._exempt[resource] = known
        return known

    def take(self, request: web.Request) -> float | None:
        """A token for this request: the tokens left, negative when refused (see
        `TokenBuckets.take`), None when the route is exempt."""
        if self.is_exempt(request):
            return None
        user = user_of(request)
        if user:
            kind, key = "user", "u:" + user
        else:
            kind, key = "address", "a:" + self.addresses.of(request)
        left = self.buckets.take(key, time.monotonic())
        if left < 0:
            self.buckets.refused[kind] += 1
        return left

    def refusal(self, left: float, request_id: str) -> web.StreamResponse:
        """The 429 problem for a refused take (`left` < 0)."""
        wait = max(1, math.ceil(-left / self.rate))
        error = TooManyRequests(
            f"rate limit: {self.rate:g} requests/s, bursts of {self.burst}", wait
        )
        return problem_response(error, request_id)

    def stamp(self, response: web.StreamResponse, left: float) -> None:
        """The RateLimit fields; a streamed response has sent its headers already."""
        if not response.prepared:
            full_in = math.ceil((self.burst - left) / self.rate)
            response.headers[POLICY_HEADER] = self.policy
            response.headers[STATE_HEADER] = f'"default";r={int(left)};t={full_in}'
