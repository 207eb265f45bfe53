"""The Core record: the parts every service function receives.

Defined here, in the services layer, so services depend on it without
importing `tracker.core` (the layer above, which builds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracker.auth.passwords import PasswordHasher
from tracker.auth.throttle import LoginThrottle, SignupThrottle
from tracker.auth.tokens import TokenCodec
from tracker.scripting.pool import WorkerPool
from tracker.services.access_cache import AccessCache
from tracker.services.background import BackgroundServices
from tracker.services.events import EventBus
from tracker.services.tenant_scan import TenantScan
from tracker.settings import Settings
from tracker.storage.database import Database
from tracker.storage.pool import DataDirLock, TenantPool


@dataclass
class Core:
    settings: Settings
    system: Database
    tenants: TenantPool
    events: EventBus
    passwords: PasswordHasher
    tokens: TokenCodec
    throttle: LoginThrottle
    lock: DataDirLock | None = None
    access_cache: AccessCache = field(default_factory=AccessCache)
    # started by open_core after the databases open, stopped before they close
    background: BackgroundServices = field(default_factory=BackgroundServices)
    # user id -> (token_version, disabled): per-request auth without a database hop;
    # exact because every change to either goes through services.accounts in this process.
    user_states: dict[str, tuple[int, bool]] = field(default_factory=dict)
    signups: SignupThrottle | None = None  # built from settings when not given
    # Lua worker processes for automation scripts (started lazily on the first run)
    scripts: WorkerPool = field(default_factory=WorkerPool)
    # the one start-up pass over every tenant, for the services that need it (begun by open_core)
    scan: TenantScan = field(default_factory=TenantScan)

    def __post_init__(self) -> None:
        if self.signups is None:
            self.signups = SignupThrottle(self.settings.signups_per_address)
