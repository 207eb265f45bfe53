"""open_core(): the ONE place that wires storage, auth and the event bus together.

The HTTP app, the CLI and plugin mode all open the same Core; none of them
builds these parts on its own. (The Core record itself is defined in the
services layer, which receives it; this module only assembles and closes it.)
`open_core` is an async context manager: one AsyncExitStack owns the lock, the
databases and the background services, so they unwind in the right order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence

from tracker.auth.passwords import PasswordHasher
from tracker.auth.throttle import LoginThrottle
from tracker.auth.tokens import SECRET_FILE_NAME, TokenCodec, ensure_secret
from tracker.errors import DataDirError
from tracker.scripting.pool import WorkerPool
from tracker.services.background import BackgroundService
from tracker.services.events import EventBus
from tracker.services.member_log import replay_member_log
from tracker.services.runtime import Core
from tracker.settings import Settings
from tracker.storage import slowlog
from tracker.storage.database import Database
from tracker.storage.files import DIR_MODE, FILE_MODE, tighten
from tracker.storage.heap import keep_freed_memory
from tracker.storage.migrate import apply_migrations
from tracker.storage.pool import DataDirLock, TenantPool, ensure_fd_budget, fitting_cap
from tracker.storage.sqlite_setup import stop_memory_statistics

log = logging.getLogger(__name__)

# SQLite 3.7.0 to 3.51.2 has the WAL-reset race (fixed in 3.51.3); it needs two
# connections to one file, which is why every tenant has exactly one.
WAL_RESET_FIXED = (3, 51, 3)


def prepare_server_process(settings: Settings) -> None:
    """Process-wide settings of a server process, before it opens its first database:
    SQLite's memory statistics off unless kept (tracker/storage/sqlite_setup.py), and
    freed memory kept in the C heap's thread arenas (tracker/storage/heap.py)."""
    if not settings.sqlite_memory_statistics:
        stop_memory_statistics()
    keep_freed_memory()


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directory (0700) or explain clearly why it is unusable."""
    path = settings.data_dir
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create data directory {path}: {exc.strerror}") from exc
    if not path.is_dir():
        raise DataDirError(f"data directory {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"data directory {path} is not writable")
    # Group/world access to the folder, the system DB or the secret is fixed here
    # (one warning each), or refused with a clear message when it cannot be.
    tighten(path, DIR_MODE)
    for name in (settings.system_db_path.name, SECRET_FILE_NAME):
        for suffix in ("", "-wal", "-shm"):
            tighten(path / (name + suffix), FILE_MODE)


def log_sqlite_version() -> None:
    version = sqlite3.sqlite_version_info
    if version < WAL_RESET_FIXED:
        log.info(
            "SQLite %s (WAL-reset race present before 3.51.3: one connection per tenant kept)",
            sqlite3.sqlite_version,
        )
    else:
        log.info("SQLite %s", sqlite3.sqlite_version)


#: Builds one background service for a core (it receives the core it serves).
ServiceFactory = Callable[[Core], BackgroundService]


# The core's own services are imported when a core with background work opens, not
# when this module is imported: the CLI (background=False) never loads the hub, the
# webhook client or the mailer (its start-up time is measured, docs/cli.md).


def _hub(core: Core) -> BackgroundService:
    from tracker.services.hub import Hub

    return Hub(core)


def _notifications(core: Core) -> BackgroundService:
    from tracker.services.notifications import notifications_service

    return notifications_service(core)


def _webhooks(core: Core) -> BackgroundService:
    from tracker.services.webhook_delivery import WebhookService

    return WebhookService(core)


def _script_events(core: Core) -> BackgroundService:
    from tracker.services.script_triggers import ScriptEvents

    return ScriptEvents(core)


def _script_schedules(core: Core) -> BackgroundService:
    from tracker.services.script_triggers import ScriptSchedules

    return ScriptSchedules(core)


#: The core's own background services, in start order (stopped in reverse).
#: A feature that needs background work appends its factory here.
CORE_SERVICES: tuple[ServiceFactory, ...] = (
    _hub,
    _notifications,
    _webhooks,
    _script_events,
    _script_schedules,
)


@contextlib.asynccontextmanager
async def open_core(
    settings: Settings,
    *,
    exclusive: bool = True,
    background: bool = True,
    services: Sequence[ServiceFactory] = (),
) -> AsyncIterator[Core]:
    """Open the system DB (migrating it), the tenant pool and auth; lock the data dir.

    `async with open_core(settings) as core:` -- on exit (also on an error in the
    block) background services stop newest first, then queued units finish and
    every database is checkpointed and closed, then the lock is released.
    `background=False` starts no background service (CLI, most tests);
    `services` adds factories after `CORE_SERVICES` (plugin hosts, tests).
    """
    prepare_data_dir(settings)
    log_sqlite_version()
    slowlog.configure(settings.slow_query_ms)  # before any database opens
    max_open = fitting_cap(settings.max_open_tenants, ensure_fd_budget(settings.max_open_tenants))
    async with contextlib.AsyncExitStack() as stack:
        lock = DataDirLock(settings.data_dir) if exclusive else None
        if lock:
            lock.acquire()
            stack.callback(lock.release)
        system = await Database.open(
            settings.system_db_path, create=True, synchronous="FULL", name="system"
        )
        stack.push_async_callback(system.close)
        await system.read(lambda conn: apply_migrations(conn, "system"))
        core = _assemble(settings, system, lock, max_open)
        stack.callback(core.passwords.close)
        stack.push_async_callback(core.tenants.close_all)
        # before the databases close: a preview may hold a tenant's writer while a script runs
        stack.push_async_callback(_close_workers, core.scripts)
        core.events.subscribe(core.access_cache.on_batch)
        own = CORE_SERVICES if background else ()  # not even built without background work
        for factory in (*own, *services):
            core.background.add(factory(core))
        stack.push_async_callback(core.background.stop)  # whatever runs stops first
        stack.push_async_callback(core.scan.stop)  # before the services it feeds
        if background:
            await core.background.start()
            # the services' one pass over every tenant runs while the server answers
            # (docs/tenants.md, "Start-up with many tenants")
            core.scan.begin(core)
        # after the services start, so their subscribers see the replayed batches
        await replay_member_log(core)
        yield core


def _assemble(
    settings: Settings, system: Database, lock: DataDirLock | None, max_open: int
) -> Core:
    secret = ensure_secret(settings.data_dir, settings.jwt_secret)
    return Core(
        settings=settings,
        system=system,
        tenants=TenantPool(
            settings.data_dir,
            max_open=max_open,
            synchronous=settings.tenant_synchronous,
            opens_at_once=settings.tenant_opens_at_once,
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


async def _close_workers(pool: WorkerPool) -> None:
    """Stop the Lua worker processes (a blocking join, so off the event loop)."""
    await asyncio.get_running_loop().run_in_executor(None, pool.close)
