"""Webhook and delivery shapes (SPEC §8).

The URL's address rules (SSRF guard) need the network layer's classifier and
are applied by the service; here only shape: length, event names, secret size.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from tracker.domain.events import EVENT_NAMES
from tracker.domain.models.base import Input, Output

#: Longest accepted URL (the guard refuses longer ones too; 422 either way).
MAX_URL_CHARS = 2048
#: What a hook may ask for: every event name, or "*".
HOOK_EVENTS = EVENT_NAMES | {"*"}


def _known_events(value: list[str]) -> list[str]:
    unknown = [name for name in value if name not in HOOK_EVENTS]
    if unknown:
        raise ValueError(f"unknown event names: {', '.join(sorted(set(unknown)))[:200]}")
    if "*" in value and len(value) > 1:
        raise ValueError('"*" stands alone')
    return sorted(set(value))


class WebhookIn(Input):
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS)
    events: list[str] = Field(min_length=1, max_length=len(HOOK_EVENTS))
    enabled: bool = True
    #: Unset: a secret is generated and shown once, in the create response.
    secret: str | None = Field(None, min_length=16, max_length=256)

    _events = field_validator("events")(_known_events)


class WebhookPatch(Input):
    url: str | None = Field(None, min_length=1, max_length=MAX_URL_CHARS)
    events: list[str] | None = Field(None, min_length=1, max_length=len(HOOK_EVENTS))
    enabled: bool | None = None
    #: A new secret (rotation); never shown back.
    secret: str | None = Field(None, min_length=16, max_length=256)

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _known_events(value)


class Webhook(Output):
    id: str
    url: str
    events: list[str]
    enabled: bool
    #: Why the server turned it off (e.g. "gone": the receiver answered 410).
    disabled_reason: str | None
    #: The secret's last four characters (the secret itself is shown once).
    secret_hint: str
    created_at: str
    updated_at: str


class WebhookCreated(Webhook):
    """The create response: the only time the secret is shown."""

    secret: str


class Attempt(Output):
    at: str
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryRequest(Output):
    headers: dict[str, str]
    body: str


class DeliveryResponse(Output):
    status: int | None
    #: The first 4 KiB of the receiver's answer (UTF-8, undecodable bytes replaced).
    body: str


class DeliverySummary(Output):
    id: str
    event: str
    seq: int
    status: str
    attempt_count: int
    next_attempt_at: str | None
    created_at: str
    response_status: int | None
    duration_ms: int | None


class Delivery(Output):
    id: str
    event: str
    seq: int
    status: str
    attempts: list[Attempt]
    next_attempt_at: str | None
    created_at: str
    request: DeliveryRequest
    response: DeliveryResponse
