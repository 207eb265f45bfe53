"""Invitations: an org admin invites an email address with an org role."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tracker.domain.models.accounts import EMAIL_PATTERN, _normalise_email
from tracker.domain.models.base import Input, Output


class InviteIn(Input):
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    role: Literal["admin", "member"] = "member"

    _email = field_validator("email")(_normalise_email)


class Invite(Output):
    id: str
    email: str
    role: str
    invited_by: str | None
    created_at: str
    expires_at: str
