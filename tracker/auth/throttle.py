"""Login throttling: failures per email and attempts per client address, in memory.

Sliding windows slow an attacker down without locking the real user out for
good (docs/reliability.md §2.4). Callers record failures for unknown emails
too, so the throttle itself reveals nothing about which accounts exist.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from tracker.domain.emails import normalize_email
from tracker.errors import TooManyRequests

_DETAIL = "too many login attempts; try again later"


class _SlidingWindows:
    """At most `limit` timestamps per key, keys ordered by last event, at most `max_keys` keys.

    Keeping only the newest `limit` events is enough: the key is blocked exactly
    while the oldest of them is still inside the window.
    """

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._events)

    def record(self, key: str, now: float) -> None:
        """Add one event and keep memory bounded: expired keys go first, then the stalest.

        Evicting a live key forgets its events; that needs `max_keys` busier keys
        inside one window, and costs an attacker far more than it gains.
        """
        events = self._events.pop(key, None) or deque(maxlen=self._limit)
        events.append(now)
        self._events[key] = events  # re-inserted at the end: order is by last event
        self._prune(now)
        while len(self._events) > self._max_keys:
            self._events.popitem(last=False)

    def clear(self, key: str) -> None:
        self._events.pop(key, None)

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until `key` may try again, or None when it is under its limit."""
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self._window:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        if len(events) < self._limit:
            return None
        return events[0] + self._window - now

    def _prune(self, now: float) -> None:
        """Drop keys whose newest event has left the window; they sit at the front."""
        cutoff = now - self._window
        while self._events:
            key, events = next(iter(self._events.items()))
            if events[-1] > cutoff:
                return
            del self._events[key]


class LoginThrottle:
    """Answers 429 with Retry-After once an email or an address has been too busy."""

    def __init__(
        self,
        *,
        max_failures_per_email: int = 5,
        email_window_seconds: float = 900,
        max_attempts_per_address: int = 20,
        address_window_seconds: float = 60,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Monotonic: a wall-clock jump must neither lift nor extend a block.
        self._clock = clock
        self._emails = _SlidingWindows(max_failures_per_email, email_window_seconds, max_keys)
        self._addresses = _SlidingWindows(
            max_attempts_per_address, address_window_seconds, max_keys
        )

    def check(self, email: str, address: str) -> None:
        """Raise TooManyRequests if either the email or the address is over its limit."""
        now = self._clock()
        waits = [
            self._emails.retry_after(_email_key(email), now),
            self._addresses.retry_after(address, now),
        ]
        longest = max((w for w in waits if w is not None), default=None)
        if longest is not None:
            raise TooManyRequests(_DETAIL, retry_after=max(1, math.ceil(longest)))

    def record_attempt(self, address: str) -> None:
        """Count every login attempt from an address, successful or not."""
        self._addresses.record(address, self._clock())

    def record_failure(self, email: str) -> None:
        """Count a failed login for an email, whether or not the account exists."""
        self._emails.record(_email_key(email), self._clock())

    def record_success(self, email: str) -> None:
        """A correct password forgives the email's earlier failures."""
        self._emails.clear(_email_key(email))

    def tracked_keys(self) -> tuple[int, int]:
        """(emails, addresses) currently held; for metrics and the memory-bound test."""
        return len(self._emails), len(self._addresses)


def _email_key(email: str) -> str:
    return normalize_email(email)


class SignupThrottle:
    """Sign-ups per client address per hour (`RHYTHM_SIGNUPS_PER_ADDRESS`, 0 = unlimited).

    Every attempt counts, whether the address was free or taken, so the throttle
    itself tells nothing about which accounts exist.
    """

    def __init__(
        self,
        per_hour: int,
        *,
        window_seconds: float = 3600,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._windows = _SlidingWindows(max(per_hour, 1), window_seconds, max_keys)
        self._unlimited = per_hour == 0

    def admit(self, address: str) -> None:
        """Count one sign-up attempt, or raise TooManyRequests when the address is over."""
        if self._unlimited:
            return
        now = self._clock()
        wait = self._windows.retry_after(address, now)
        if wait is not None:
            raise TooManyRequests(
                "too many sign-ups from this address; try again later",
                retry_after=max(1, math.ceil(wait)),
            )
        self._windows.record(address, now)
