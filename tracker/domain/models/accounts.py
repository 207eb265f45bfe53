"""Accounts: registration, login, tokens and the current user."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints, field_validator

from tracker.domain.emails import check_email
from tracker.domain.models.base import Input, Output

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}$"


def _email_in(value: object) -> object:
    """Before the pattern: refuse invisible characters, then NFKC + case fold
    (fullwidth `ANN@example.com` becomes `ann@example.com`); non-strings fail as strings."""
    return check_email(value) if isinstance(value, str) else value


#: An email in a request body: normalized (tracker.domain.emails), then pattern-checked.
Email = Annotated[
    str, StringConstraints(max_length=320, pattern=EMAIL_PATTERN), BeforeValidator(_email_in)
]
#: The email of a login: normalized the same way; any shape (a wrong one fails as 401).
LoginEmail = Annotated[str, StringConstraints(max_length=320), BeforeValidator(_email_in)]


def _needs_dot(value: str) -> str:
    if "." not in value.rpartition("@")[2]:
        raise ValueError("email needs a domain with a dot")
    return value


class RegisterIn(Input):
    email: Email
    password: str = Field(min_length=8, max_length=1024)
    display_name: str = Field("", max_length=200)

    _email = field_validator("email")(_needs_dot)


class LoginIn(Input):
    email: LoginEmail
    password: str = Field(max_length=1024)


class RefreshIn(Input):
    """Any string up to a JWT's size: a wrong kind of token (an access token, say) is a
    bad refresh token like any other, so the service answers 401, not a 422 on length."""

    refresh_token: str = Field(min_length=1, max_length=4096)


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
