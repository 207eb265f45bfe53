"""Invitations: an org admin invites an email address with an org role."""

from __future__ import annotations

from typing import Literal

from tracker.domain.models.accounts import Email
from tracker.domain.models.base import Input, Output


class InviteIn(Input):
    email: Email
    role: Literal["admin", "member"] = "member"


class Invite(Output):
    id: str
    email: str
    role: str
    invited_by: str | None
    created_at: str
    expires_at: str
