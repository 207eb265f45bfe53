"""Settings: one pydantic model, read from RHYTHM_* environment variables or a file.

`create_app` takes a finished Settings and never reads the environment itself;
only `Settings.from_env` (used by the CLI) does.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENV_PREFIX = "RHYTHM_"

LogLevel = Literal["debug", "info", "warning", "error"]


class Settings(BaseModel):
    """Everything an operator can tune. Every field is documented in the README."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Field(Path("tenants"), description="Where _system.db and tenant folders live.")
    host: str = Field("127.0.0.1", description="Address `rhythm serve` binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port `rhythm serve` binds to.")
    jwt_secret: str | None = Field(
        None,
        description="HS256 signing secret (>= 32 bytes). Unset: generated once into the data dir.",
    )
    jwt_issuer: str = Field("rhythm", description="`iss` claim of access tokens.")
    jwt_audience: str = Field("rhythm-api", description="`aud` claim of access tokens.")
    access_token_ttl: int = Field(900, ge=30, description="Access token lifetime, seconds.")
    refresh_token_ttl: int = Field(7 * 86400, ge=60, description="Refresh token idle lifetime.")
    refresh_family_ttl: int = Field(30 * 86400, ge=60, description="Absolute refresh family life.")
    max_open_tenants: int = Field(
        1024, ge=1, description="LRU cap of open tenant databases (docs/tenants.md)."
    )
    tenant_opens_at_once: int = Field(
        8,
        ge=1,
        description="Tenant files opened at the same moment; further misses wait their "
        "turn (more only helps where opens wait on slow storage; docs/tenants.md).",
    )
    exclusive_tenants: bool = Field(
        True,
        description="While serving, hold open tenant files exclusively (cheaper opens; "
        "another process cannot read them meanwhile: backups and exports go through the "
        "server; docs/tenants.md).",
    )
    sqlite_memory_statistics: bool = Field(
        False,
        description="Keep SQLite's memory statistics on in `rhythm serve` (they cost a "
        "process-wide mutex per allocation; docs/tenants.md).",
    )
    tenant_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="NORMAL: a power cut may lose the last commits; FULL: fsync every commit.",
    )
    cors_origins: tuple[str, ...] = Field((), description="Origins allowed by CORS (comma list).")
    log_level: LogLevel = Field("info", description="Logging level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or as JSON objects one per line."
    )
    slow_request_ms: int = Field(
        1000, ge=0, description="Log a warning for requests slower than this, ms (0: off)."
    )
    slow_query_ms: float = Field(
        0, ge=0, description="Log SQL slower than this with its query plan, ms (0: off)."
    )
    metrics: bool = Field(True, description="Serve GET /metrics (Prometheus) and count requests.")
    metrics_token: str | None = Field(
        None, description="Bearer token that opens /metrics to non-loopback clients."
    )
    rate_limit_rps: float = Field(
        20.0, ge=0, description="Requests per second per user (per address when anonymous); 0: off."
    )
    rate_limit_burst: int = Field(100, ge=1, description="Requests allowed in a burst.")
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="Proxy addresses/networks (comma list) whose X-Forwarded-For is believed.",
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest accepted JSON body.")
    max_attachment_mb: int = Field(
        25, ge=1, le=1024 * 1024, description="Largest accepted attachment, MiB (413 beyond)."
    )
    org_quota_mb: int = Field(
        0,
        ge=0,
        le=1024 * 1024 * 1024,
        description="Attachment bytes one organization may store, MiB (0: unlimited).",
    )
    max_import_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="Largest accepted import file (POST …/issues/import).",
    )
    argon2_time_cost: int = Field(2, ge=1, description="argon2id iterations.")
    argon2_memory_kib: int = Field(19456, ge=8192, description="argon2id memory per hash, KiB.")
    argon2_concurrency: int = Field(2, ge=1, description="Password hashes run at once.")
    login_failures_per_email: int = Field(5, ge=1, description="Failed logins per email / 15 min.")
    login_attempts_per_address: int = Field(20, ge=1, description="Logins per address / minute.")
    signup: Literal["open", "invite", "closed"] = Field(
        "open", description="Who may register: anyone, invited addresses, or nobody."
    )
    signups_per_address: int = Field(10, ge=0, description="Sign-ups per address / hour; 0: off.")
    max_orgs_per_user: int = Field(10, ge=0, description="Live orgs a user may create; 0: off.")
    query_time_limit_ms: int = Field(1000, ge=10, description="Budget of one user-driven query.")
    smtp_url: str | None = Field(
        None,
        description="Notification mail server: smtp://[user:pass@]host[:port][?starttls=required"
        "|off] or smtps://… (implicit TLS). Unset: email notifications are off.",
    )
    mail_from: str | None = Field(
        None, description="From address of notification emails. Unset: notifications are off."
    )
    notify_batch_seconds: float = Field(
        60.0, ge=0, le=86400, description="Window that gathers changes to one issue into one email."
    )
    public_url: str | None = Field(
        None,
        description="Base URL people reach Rhythm at, for links in emails "
        "(default http://<host>:<port>).",
    )
    sync_client_ttl_days: int = Field(
        180, ge=1, le=36500,
        description="Offline replicas (sync clients) not seen for this many days are revoked.",
    )  # fmt: skip
    ws_catchup_max: int = Field(
        10_000, ge=1, description="WebSocket catch-up limit in changes; beyond it `resync`."
    )
    ws_max_per_user: int = Field(20, ge=1, description="Open WebSockets per user (4429 beyond).")
    ws_queue_frames: int = Field(
        1000, ge=1, description="Frames queued for one WebSocket before it is closed 4008."
    )
    ws_queue_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Bytes queued for one WebSocket before 4008."
    )
    ws_heartbeat: float = Field(30.0, gt=0, description="WebSocket ping interval, seconds.")
    ws_max_frame_bytes: int = Field(
        64 * 1024, ge=256, description="Largest client WebSocket frame (1009 beyond)."
    )
    ws_frame_rate: float = Field(20.0, gt=0, description="Client frames per second (4429 beyond).")
    ws_frame_burst: int = Field(60, ge=1, description="Client frames allowed in a burst.")
    ws_auth_timeout: float = Field(
        5.0, gt=0, description="Seconds a WebSocket may wait for its `auth` frame (4401)."
    )
    idle_timeout: float = Field(
        15.0, gt=0, description="Seconds to send a request head / keep an idle connection."
    )
    min_free_mb: int = Field(
        256, ge=0, description="/health/ready answers 503 below this much free disk space."
    )
    webhook_allow_private: bool = Field(
        False, description="Let webhooks reach loopback/private addresses (tests, closed networks)."
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60, description="Webhook POST timeout.")
    webhook_concurrency: int = Field(32, ge=1, description="Webhook POSTs in flight at once.")
    webhook_host_concurrency: int = Field(2, ge=1, description="Webhook POSTs per host at once.")
    webhook_retry_base_seconds: float = Field(10.0, gt=0, description="First retry delay floor.")
    webhook_retry_cap_seconds: float = Field(3600.0, gt=0, description="Longest retry delay.")
    webhook_give_up_seconds: float = Field(
        86400.0, gt=0, description="A delivery is retried for this long, then `failed`."
    )
    script_timeout_ms: int = Field(
        2000, ge=50, le=600_000, description="CPU budget of one script run (wall clock: 2x + 1 s)."
    )
    script_memory_mb: int = Field(
        32, ge=4, le=1024, description="Lua memory cap of one script run."
    )
    script_workers: int = Field(2, ge=1, le=64, description="Lua worker processes.")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError: a clear settings error
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("RHYTHM_SMTP_URL must start with smtp:// or smtps://")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("RHYTHM_PUBLIC_URL must start with http:// or https://")
        return None if value is None else value.rstrip("/")

    @property
    def notifications_on(self) -> bool:
        """Email notifications run only with both a mail server and a From address."""
        return bool(self.smtp_url and self.mail_from)

    @property
    def base_url(self) -> str:
        """Where links in emails point (RHYTHM_PUBLIC_URL, else the bound host and port)."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def from_env(
        cls,
        environ: dict[str, str] | None = None,
        config_file: Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from a JSON config file, then RHYTHM_* variables, then overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = config_file or (Path(env["RHYTHM_CONFIG"]) if "RHYTHM_CONFIG" in env else None)
        if path is not None:
            values.update(json.loads(path.read_text()))
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    @property
    def system_db_path(self) -> Path:
        return self.data_dir / "_system.db"
