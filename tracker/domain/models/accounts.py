"""Accounts: registration, login, tokens and the current user."""

from __future__ import annotations

from pydantic import Field, field_validator

from tracker.domain.models.base import Input, Output

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}$"


def _normalise_email(value: str) -> str:
    value = value.strip()
    if "." not in value.rpartition("@")[2]:
        raise ValueError("email needs a domain with a dot")
    return value


class RegisterIn(Input):
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    password: str = Field(min_length=8, max_length=1024)
    display_name: str = Field("", max_length=200)

    _email = field_validator("email")(_normalise_email)


class LoginIn(Input):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class RefreshIn(Input):
    refresh_token: str = Field(min_length=1, max_length=200)


class NotificationsPatch(Input):
    """`PATCH /users/me {"notifications": {"email": false}}` turns notification email off."""

    email: bool | None = None


class UserPatch(Input):
    display_name: str | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=8, max_length=1024)
    current_password: str | None = Field(None, max_length=1024)
    notifications: NotificationsPatch | None = None


class Notifications(Output):
    email: bool = True


class User(Output):
    id: str
    email: str
    display_name: str
    created_at: str


class Me(User):
    """`GET/PATCH /users/me`: the user plus their own preferences."""

    notifications: Notifications = Field(default_factory=Notifications)


class TokenPair(Output):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class Health(Output):
    status: str
    checks: dict[str, str] = {}
