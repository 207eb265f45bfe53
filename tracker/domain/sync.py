"""The offline-sync protocol's vocabulary: versions, cursors, request and answer shapes
(docs/sync.md is the contract; the server side lives in tracker/services/sync_*.py)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, field_validator

from tracker.domain.bounds import MAX_INT
from tracker.domain.models.base import Input, Output

PROTOCOL_MIN, PROTOCOL_MAX = 1, 1
SCHEMA_MIN, SCHEMA_CURRENT = 1, 1
HEADER = "Rhythm-Sync"

PUSH_MAX_MUTATIONS = 100
PUSH_MAX_BYTES = 1024 * 1024
PULL_MAX_ITEMS = 1000
#: Entities per snapshot page: large enough that a 100,000-issue clone stays inside the
#: default rate limit's burst (each page is one request), small enough that one page's
#: read is short on the tenant's thread.
SNAPSHOT_MAX_ITEMS = 2000
RESET_THRESHOLD = 200_000
#: How long a pushed mutation's answer is kept for retries.
RESULT_RETENTION_DAYS = 30
#: A time entry may be dated at most this many days after the server's today.
CLOCK_TOLERANCE_DAYS = 1

_KEY = r"^(\*|[A-Za-z][A-Za-z0-9]{1,9})$"
ProjectScope = list[str]


class SyncVersionError(ValueError):
    """A version outside what the server accepts; `too_old` picks 426 over 400."""

    def __init__(self, what: str, value: int, too_old: bool) -> None:
        self.what, self.value, self.too_old = what, value, too_old
        bound = (PROTOCOL_MIN if too_old else PROTOCOL_MAX) if what == "protocol" else (
            SCHEMA_MIN if too_old else SCHEMA_CURRENT)  # fmt: skip
        word = "at least" if too_old else "at most"
        super().__init__(f"this server speaks sync {what} {word} {bound}; you sent {value}")
        self.bound = bound


def parse_header(value: str | None) -> tuple[int, int]:
    """`protocol=1; schema=1` -> (1, 1); missing parts mean "current". ValueError if unreadable."""
    protocol, schema = PROTOCOL_MAX, SCHEMA_CURRENT
    if value is None:
        return protocol, schema
    for part in value.split(";"):
        name, sep, number = part.strip().partition("=")
        if not part.strip():
            continue
        if not sep or not number.strip().isdigit() or len(number.strip()) > 6:
            raise ValueError(f"{HEADER} must read like 'protocol=1; schema=1'")
        if name.strip() == "protocol":
            protocol = int(number)
        elif name.strip() == "schema":
            schema = int(number)
    return protocol, schema


def check_versions(protocol: int, schema: int) -> None:
    """Raise SyncVersionError for a protocol or schema outside the accepted range."""
    if protocol < PROTOCOL_MIN:
        raise SyncVersionError("protocol", protocol, True)
    if protocol > PROTOCOL_MAX:
        raise SyncVersionError("protocol", protocol, False)
    if schema < SCHEMA_MIN:
        raise SyncVersionError("schema", schema, True)
    if schema > SCHEMA_CURRENT:
        raise SyncVersionError("schema", schema, False)


def make_cursor(epoch: str, seq: int) -> str:
    return f"{epoch}.{seq}"


def parse_cursor(text: str) -> tuple[str, int]:
    """`<epoch>.<seq>` -> (epoch, seq); ValueError when it is not one."""
    epoch, sep, seq = text.rpartition(".")
    if not sep or not epoch or not seq.isdigit() or len(seq) > 15 or len(epoch) > 64:
        raise ValueError("not a sync cursor")
    return epoch, int(seq)


def mutation_hash(name: str, version: int, args: Any) -> str:
    """sha256 of the canonical JSON {name, v, args}: what a retry must repeat exactly."""
    text = json.dumps({"args": args, "name": name, "v": version}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


# --- request bodies and queries -----------------------------------------------------------


class ClientIn(Input):
    device: str = Field("", max_length=100)
    scope: list[str] = Field(min_length=1, max_length=200)
    schema_: int = Field(SCHEMA_CURRENT, alias="schema", ge=0, le=MAX_INT)

    @field_validator("scope")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        return _scope(value)


class ClientPatch(Input):
    scope: list[str] = Field(min_length=1, max_length=200)
    device: str | None = Field(None, max_length=100)

    @field_validator("scope")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        return _scope(value)


def _scope(value: list[str]) -> list[str]:
    import re

    keys = []
    for key in value:
        if not re.match(_KEY, key):
            raise ValueError("a scope is project keys (WEB) or ['*']")
        keys.append(key.upper())
    if "*" in keys and len(keys) > 1:
        raise ValueError("'*' stands alone")
    return sorted(set(keys))


class MutationIn(Input):
    model_config = Input.model_config | {"strict": False}

    id: int = Field(ge=1, le=MAX_INT)
    name: str = Field(min_length=1, max_length=100)
    v: int = Field(ge=1, le=1000)
    at: str | None = Field(None, max_length=64)
    args: dict[str, Any]


class PushIn(Input):
    model_config = Input.model_config | {"strict": False}

    client_id: str = Field(min_length=1, max_length=64)
    protocol: int = Field(PROTOCOL_MAX, ge=0, le=MAX_INT)
    schema_: int = Field(SCHEMA_CURRENT, alias="schema", ge=0, le=MAX_INT)
    client_time: str | None = Field(None, max_length=64)
    mutations: list[MutationIn] = Field(max_length=PUSH_MAX_MUTATIONS)


class PullQuery(Input):
    model_config = Input.model_config | {"strict": False, "extra": "ignore"}

    client_id: str = Field(min_length=1, max_length=64)
    cursor: str = Field(min_length=3, max_length=100)
    limit: int = Field(PULL_MAX_ITEMS, ge=1, le=PULL_MAX_ITEMS)


class SnapshotQuery(Input):
    model_config = Input.model_config | {"strict": False, "extra": "ignore"}

    client_id: str = Field(min_length=1, max_length=64)
    page_token: str | None = Field(None, max_length=2000)
    project: str | None = Field(None, max_length=10, description="one project key of the scope")
    limit: int = Field(SNAPSHOT_MAX_ITEMS, ge=1, le=SNAPSHOT_MAX_ITEMS)


# --- answers ------------------------------------------------------------------------------


class Range(Output):
    min: int
    max: int | None = None
    current: int | None = None


class InfoProject(Output):
    id: str
    key: str
    name: str
    role: str
    issues: int


class InfoOut(Output):
    protocol: dict[str, int]
    schema_: dict[str, int] = Field(alias="schema")
    epoch: str
    head: int
    min_seq: int
    server_time: str
    projects: list[InfoProject]
    mutations: list[str]
    limits: dict[str, int]


class ClientOut(Output):
    client_id: str
    epoch: str
    last_mutation_id: int
    scope: list[str]
    device: str
    server_time: str


class ChangeOut(Output):
    seq: int
    id: str
    batch: str
    at: str
    actor: str | None
    origin: str
    entity: str
    entity_id: str
    project: str | None
    op: str
    field: str | None
    old: Any = None
    new: Any = None
    version: int | None
    client_id: str | None
    mutation_id: int | None
    meta: Any = None


class ScopeOut(Output):
    projects: list[str]
    added: list[str]
    removed: list[str]
    snapshot: list[str]


class ResetOut(Output):
    reason: Literal["epoch", "compacted", "too_far_behind"]
    action: Literal["resnapshot"]


class PullOut(Output):
    cursor: str
    has_more: bool
    head: int
    last_mutation_id: int
    server_time: str
    items: list[ChangeOut]
    bundles: list[Any]
    scope: ScopeOut
    reset: ResetOut | None


class ResultOut(Output):
    id: int
    status: Literal[
        "applied", "noop", "conflict_applied", "merged", "kept_both", "rejected", "deferred"
    ]
    replayed: bool | None = None
    seqs: list[int] | None = None
    problem: dict[str, Any] | None = None


class PushOut(Output):
    last_mutation_id: int
    head: int
    server_time: str
    incomplete: bool
    results: list[dict[str, Any]]
