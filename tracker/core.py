"""open_core(): the ONE place that wires storage, auth and the event bus together.

The HTTP app, the CLI and plugin mode all open the same Core; none of them
builds these parts on its own. (The Core record itself is defined in the
services layer, which receives it; this module only assembles and closes it.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3

from tracker.auth.passwords import PasswordHasher
from tracker.auth.throttle import LoginThrottle
from tracker.auth.tokens import TokenCodec, ensure_secret
from tracker.errors import DataDirError
from tracker.scripting.pool import WorkerPool
from tracker.services.events import EventBus
from tracker.services.runtime import Core
from tracker.settings import Settings
from tracker.storage.database import Database
from tracker.storage.migrate import apply_migrations
from tracker.storage.pool import DataDirLock, TenantPool, ensure_fd_budget

log = logging.getLogger(__name__)

# SQLite 3.7.0 to 3.51.2 has the WAL-reset race (fixed in 3.51.3); it needs two
# connections to one file, which is why every tenant has exactly one.
WAL_RESET_FIXED = (3, 51, 3)


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directory (0700) or explain clearly why it is unusable."""
    path = settings.data_dir
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create data directory {path}: {exc.strerror}") from exc
    if not path.is_dir():
        raise DataDirError(f"data directory {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"data directory {path} is not writable")


def log_sqlite_version() -> None:
    version = sqlite3.sqlite_version_info
    if version < WAL_RESET_FIXED:
        log.info(
            "SQLite %s (WAL-reset race present before 3.51.3: one connection per tenant kept)",
            sqlite3.sqlite_version,
        )
    else:
        log.info("SQLite %s", sqlite3.sqlite_version)


async def open_core(settings: Settings, *, exclusive: bool = True) -> Core:
    """Open the system DB (migrating it), the tenant pool and auth; lock the data dir."""
    prepare_data_dir(settings)
    log_sqlite_version()
    ensure_fd_budget(settings.max_open_tenants)
    lock = DataDirLock(settings.data_dir) if exclusive else None
    if lock:
        lock.acquire()
    try:
        system = await Database.open(
            settings.system_db_path, create=True, synchronous="FULL", name="system"
        )
        await system.read(lambda conn: apply_migrations(conn, "system"))
    except BaseException:
        if lock:
            lock.release()
        raise
    secret = ensure_secret(settings.data_dir, settings.jwt_secret)
    core = Core(
        settings=settings,
        system=system,
        tenants=TenantPool(
            settings.data_dir,
            max_open=settings.max_open_tenants,
            synchronous=settings.tenant_synchronous,
        ),
        events=EventBus(),
        passwords=PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_kib,
            max_concurrency=settings.argon2_concurrency,
        ),
        tokens=TokenCodec(
            secret,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl_seconds=settings.access_token_ttl,
        ),
        throttle=LoginThrottle(
            max_failures_per_email=settings.login_failures_per_email,
            max_attempts_per_address=settings.login_attempts_per_address,
        ),
        lock=lock,
        scripts=WorkerPool(settings.script_workers),
    )
    core.events.subscribe(core.access_cache.on_batch)
    return core


async def close_core(core: Core) -> None:
    """Finish queued units, checkpoint and close every database, release the lock."""
    try:
        # workers first: a preview may be holding a tenant's writer while a script runs
        await asyncio.get_running_loop().run_in_executor(None, core.scripts.close)
        await core.tenants.close_all()
        await core.system.close()
        core.passwords.close()
    finally:
        if core.lock:
            core.lock.release()
