"""Password hashing with argon2id, kept off the event loop and behind a bounded queue.

Cost follows OWASP's argon2id minimum (t=2, m=19 MiB, p=1): ~35 ms per hash on
a 2-core box instead of ~180 ms with the library default, which would starve
every other request (docs/reliability.md §2.3).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from tracker.errors import BadRequest, ServiceUnavailable

if TYPE_CHECKING:
    import argon2

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 1024

# Never a valid password of any user: the dummy hash only equalises timing.
_DUMMY_PASSWORD = "rhythm-dummy-password-for-timing-only"

T = TypeVar("T")


def password_problems(password: str) -> list[str]:
    """Why a new password is unacceptable (empty list when it is fine)."""
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if _utf8_length(password) > MAX_PASSWORD_BYTES:
        problems.append(f"must be at most {MAX_PASSWORD_BYTES} bytes")
    return problems


def _utf8_length(password: str) -> int:
    """Byte length as hashed; lone surrogates (legal in JSON) count as over-long."""
    try:
        return len(password.encode("utf-8"))
    except UnicodeEncodeError:
        return MAX_PASSWORD_BYTES + 1


class PasswordHasher:
    """argon2id in a dedicated thread pool; answers 503 instead of queueing without bound."""

    def __init__(
        self,
        *,
        time_cost: int = 2,
        memory_cost_kib: int = 19456,
        parallelism: int = 1,
        max_concurrency: int = 2,
        max_waiting: int = 32,
        max_password_bytes: int = 1024,
    ) -> None:
        self._cost = (time_cost, memory_cost_kib, parallelism)
        # Dedicated pool: the loop's default executor is shared with file I/O and
        # DNS, and each argon2 call holds memory_cost_kib of RAM while it runs.
        self._executor = ThreadPoolExecutor(
            max_workers=max_concurrency, thread_name_prefix="argon2"
        )
        self._capacity = max_concurrency + max_waiting
        self._in_flight = 0
        self._lock = threading.Lock()  # guards _in_flight; held for microseconds only
        self._dummy_lock = threading.Lock()  # held while the dummy hash is made, in the pool
        self._dummy_hash: str | None = None
        self._max_password_bytes = max_password_bytes

    @cached_property
    def _hasher(self) -> argon2.PasswordHasher:
        """argon2 is imported on first use: commands that never hash start faster."""
        import argon2

        time_cost, memory_cost_kib, parallelism = self._cost
        return argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )

    async def hash(self, password: str) -> str:
        """Hash a new password (PHC string; parameters travel inside it)."""
        self._check_length(password)
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True only on a match; unknown users cost one real verify so timing reveals nothing."""
        self._check_length(password)
        if stored_hash is None:
            await self._run(self._verify_dummy, password)
            return False
        return await self._run(self._verify_sync, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether a hash was made with other parameters and should be replaced on login."""
        from argon2.exceptions import InvalidHashError

        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        """Stop the pool; waits for running hashes (tens of ms) so no thread outlives us."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _check_length(self, password: str) -> None:
        """Cap input before hashing: argon2 pre-hashes any length, so huge bodies cost CPU."""
        if _utf8_length(password) > self._max_password_bytes:
            raise BadRequest(f"password longer than {self._max_password_bytes} bytes")

    def _verify_sync(self, stored_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _verify_dummy(self, password: str) -> bool:
        """Runs in the pool: the dummy hash is made there once, never on the loop."""
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(_DUMMY_PASSWORD)
            dummy = self._dummy_hash
        self._verify_sync(dummy, password)
        return False

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        """Admit one call into the pool or refuse at once when the queue is full."""
        with self._lock:
            if self._in_flight >= self._capacity:
                raise ServiceUnavailable("password hashing is saturated", retry_after=1)
            self._in_flight += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release()
            raise
        # Released when the work really ends, even if the awaiting request was cancelled.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future: object = None) -> None:
        with self._lock:
            self._in_flight -= 1
