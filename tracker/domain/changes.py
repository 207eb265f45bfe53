"""The change record: one row of a tenant's append-only `changes` log, and its names.

Every mutation of tenant data is a `ChangeBatch` (one per request or mutation)
of `Change`s. The log is the issue history, the audit trail, the source of
events and the feed offline clients pull, so the names below are the vocabulary
every consumer (WebSocket hub, scripts, webhooks, notifications, sync) matches
on. They are `StrEnum`s: stored and serialized as their plain string values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class Entity(StrEnum):
    """What a change row is about. Link rows (tag, assignee) are entities of their own."""

    ORG = "org"
    ORG_MEMBER = "org_member"
    PROJECT = "project"
    PROJECT_MEMBER = "project_member"
    STAGE = "stage"
    ISSUE = "issue"
    COMMENT = "comment"
    ISSUE_TAG = "issue_tag"
    ISSUE_ASSIGNEE = "issue_assignee"
    TAG = "tag"
    RELATION = "relation"
    TIME_ENTRY = "time_entry"
    SPRINT = "sprint"
    CUSTOM_FIELD = "custom_field"
    ISSUE_WATCHER = "issue_watcher"  # a person's explicit watch/unwatch choice
    ATTACHMENT = "attachment"
    WEBHOOK = "webhook"  # a project's hook configuration (never its secret)
    SCRIPT = "script"


class Op(StrEnum):
    """What happened to the entity (`new` holds the full post-image on create/restore)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESTORE = "restore"
    MOVE = "move"


class Origin(StrEnum):
    """Which door the change came through."""

    API = "api"
    CLI = "cli"
    SYNC = "sync"
    SCRIPT = "script"
    SYSTEM = "system"
    PLUGIN = "plugin"


#: Entities whose changes alter who may see or do what (the access cache and the
#: change feed's visibility re-check listen for them).
ACCESS_ENTITIES = frozenset({Entity.ORG, Entity.ORG_MEMBER, Entity.PROJECT, Entity.PROJECT_MEMBER})


@dataclass(frozen=True)
class Actor:
    """Who is acting and through which door; sync fills client_id / mutation_id.

    `user_id` None is the system (or a script) acting with no person behind it;
    `meta` is stored on every change row of the batch (e.g. the script and the
    change that caused a script's run).
    """

    user_id: str | None
    origin: Origin | str = Origin.API
    client_id: str | None = None
    mutation_id: int | None = None
    meta: dict[str, Any] | None = None


class Change(NamedTuple):
    """One committed row of a tenant's `changes` log.

    A NamedTuple, not a frozen dataclass: an import builds one per issue and per
    comment, and a frozen dataclass's __init__ cost ~3 µs each there (measured).
    """

    seq: int
    id: str
    at: str
    actor: str | None
    origin: str
    entity: str
    entity_id: str
    project: str | None
    op: str
    field: str | None
    old: Any
    new: Any
    batch: str
    version: int | None = None
    meta: dict[str, Any] | None = None
    client_id: str | None = None
    mutation_id: int | None = None

    @property
    def issue(self) -> str | None:
        """The issue this change belongs to (the issue itself, or its comment's, tag's...)."""
        if self.entity == Entity.ISSUE:
            return self.entity_id
        return None if self.meta is None else self.meta.get("issue")


class StoredChange(Change):
    """A Change read back from the log, its JSON (`old`, `new`, `meta`) decoded on access.

    The change feed hands out thousands of these per page, and most consumers
    never look at most images (a create row holds the whole issue): decoding
    them eagerly cost twice the read itself (measured). The tuple slots hold
    the stored JSON text; the properties decode it, each time they are read.
    """

    __slots__ = ()

    @property  # a decoded view of the stored text
    def old(self) -> Any:
        text = tuple.__getitem__(self, 10)
        return None if text is None else json.loads(text)

    @property
    def new(self) -> Any:
        text = tuple.__getitem__(self, 11)
        return None if text is None else json.loads(text)

    @property
    def meta(self) -> Any:
        text = tuple.__getitem__(self, 14)
        return None if text is None else json.loads(text)

    def decoded(self) -> Change:
        """The plain Change, every value decoded (to compare, pickle or keep)."""
        return Change(*self[:10], self.old, self.new, self[12], self[13], self.meta, *self[15:])

    def _asdict(self) -> dict[str, Any]:
        return self.decoded()._asdict()


@dataclass(frozen=True)
class ChangeBatch:
    """Everything one request committed in one tenant, in seq order."""

    org_id: str
    batch: str
    changes: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def seq(self) -> int:
        """The batch's highest seq: a consumer that handled it resumes after this."""
        return self.changes[-1].seq if self.changes else 0

    @property
    def projects(self) -> frozenset[str]:
        return frozenset(c.project for c in self.changes if c.project is not None)
