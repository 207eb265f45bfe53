"""Accounts: register, login, refresh-token rotation, logout, the current user.

Refresh tokens rotate on every use inside one system-DB transaction: the old
token is marked used with a compare-and-set (exactly one of two parallel
refreshes wins), and presenting a used or revoked token revokes its whole
family (docs/reliability.md §2.2).
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from tracker.auth.tokens import hash_refresh_token, new_refresh_token
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import iso, new_id, now_iso, parse_iso, utcnow
from tracker.domain.models.accounts import (
    LoginIn,
    Me,
    Notifications,
    RegisterIn,
    TokenPair,
    User,
    UserPatch,
)
from tracker.domain.models.base import Page
from tracker.errors import (
    Conflict,
    Forbidden,
    NotFound,
    StorageFull,
    StorageUnavailable,
    Unauthorized,
    ValidationFailed,
)
from tracker.services.invites import accept_invites, log_joins
from tracker.services.runtime import Core
from tracker.storage import invites as invite_sql
from tracker.storage import users as user_sql

INVALID_LOGIN = "invalid email or password"
INVALID_REFRESH = "invalid or expired refresh token"


@dataclass(frozen=True)
class Principal:
    """An authenticated person, as every front door hands it to the services."""

    user_id: str


def to_user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        created_at=row["created_at"],
    )


def to_me(row: sqlite3.Row) -> Me:
    return Me(
        **to_user(row).model_dump(), notifications=Notifications(email=bool(row["notify_email"]))
    )


async def register(core: Core, data: RegisterIn, address: str | None = None) -> User:
    """Create an account. `address` is the client's for the public door (HTTP);
    None is the operator's door (`rhythm user create`): no sign-up mode, no throttle.

    Over HTTP a taken email is not a 409 (that was an account-enumeration
    oracle): the answer is the same 201 with a User of the same shape (a fresh
    id nobody holds), nothing is stored, and both paths hash the password and
    run one system write, so the timing matches too. The owner of the address
    is unaffected; whoever registered it again simply cannot log in.
    """
    public = address is not None
    if public:
        if core.settings.signup == "closed":
            raise Forbidden("sign-up is closed on this server; ask an administrator")
        assert core.signups is not None
        core.signups.admit(address or "")
    password_hash = await core.passwords.hash(data.password)
    now = now_iso()
    row = {
        "id": new_id(),
        "email": data.email,
        "display_name": data.display_name,
        "password_hash": password_hash,
        "created_at": now,
    }
    invite_only = public and core.settings.signup == "invite"

    def work(conn: sqlite3.Connection) -> list[dict[str, Any]] | None:
        if invite_only and not invite_sql.pending_for_email(conn, data.email, now):
            raise Forbidden("sign-up needs an invitation on this server")
        if not user_sql.insert_user(conn, row):
            # Same work as the insert (a row and its email index entry rewritten,
            # then a durable COMMIT), so the fsync does not tell taken from free.
            user_sql.rewrite_user_row(conn, data.email)
            return None
        return accept_invites(conn, data.email, row["id"], now)

    joined = await core.system.write(work)
    user = User(**{k: row[k] for k in ("id", "email", "display_name", "created_at")})
    if joined is None:
        if not public:
            raise Conflict("an account with this email already exists")
        return user.model_copy(update={"id": new_id()})  # same shape, stores nothing
    await log_joins(core, joined)
    return user


async def provision_user(core: Core, email: str, display_name: str = "") -> User:
    """The account with this email, created on first sight (plugin hosts sign people in
    themselves: the account gets a random password nobody knows, so no Rhythm login)."""
    try:
        data = RegisterIn(
            email=email, password=secrets.token_urlsafe(32), display_name=display_name
        )
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None
    row = await core.system.read(lambda conn: user_sql.user_by_email(conn, data.email))
    if row is not None:
        return to_user(row)
    try:
        return await register(core, data)
    except Conflict:  # created by a concurrent first sight: read it back
        row = await core.system.read(lambda conn: user_sql.user_by_email(conn, data.email))
        if row is None:
            raise
        return to_user(row)


async def login(core: Core, data: LoginIn, address: str) -> TokenPair:
    """Check the password (throttled, constant-looking timing) and start a token family."""
    core.throttle.check(data.email, address)
    core.throttle.record_attempt(address)
    row = await core.system.read(lambda conn: user_sql.user_by_email(conn, data.email))
    stored = row["password_hash"] if row is not None else None
    valid = await core.passwords.verify(stored, data.password)
    if not valid or row is None or row["disabled_at"] is not None:
        core.throttle.record_failure(data.email)
        raise Unauthorized(INVALID_LOGIN)
    core.throttle.record_success(data.email)
    if core.passwords.needs_rehash(row["password_hash"]):
        new_hash = await core.passwords.hash(data.password)
        with contextlib.suppress(StorageFull, StorageUnavailable):  # best effort: next login
            await core.system.write(
                lambda conn: user_sql.update_user(
                    conn, row["id"], {"password_hash": new_hash}, now_iso()
                )
            )
    refresh = await core.system.write(lambda conn: _start_family(core, conn, row["id"]))
    return _token_pair(core, row["id"], row["token_version"], refresh)


def _start_family(core: Core, conn: sqlite3.Connection, user_id: str) -> str:
    now = utcnow()
    family_expires = iso(now + timedelta(seconds=core.settings.refresh_family_ttl))
    return _issue_refresh(core, conn, user_id, new_id(), None, family_expires)


def _issue_refresh(
    core: Core,
    conn: sqlite3.Connection,
    user_id: str,
    family_id: str,
    parent_id: str | None,
    family_expires_at: str,
) -> str:
    token = new_refresh_token()
    now = utcnow()
    expires = min(iso(now + timedelta(seconds=core.settings.refresh_token_ttl)), family_expires_at)
    user_sql.insert_refresh_token(
        conn,
        {
            "id": new_id(),
            "token_hash": hash_refresh_token(token),
            "user_id": user_id,
            "family_id": family_id,
            "parent_id": parent_id,
            "created_at": iso(now),
            "expires_at": expires,
            "family_expires_at": family_expires_at,
        },
    )
    return token


def _token_pair(core: Core, user_id: str, token_version: int, refresh: str) -> TokenPair:
    access, expires_in = core.tokens.issue_access(user_id, token_version)
    return TokenPair(access_token=access, refresh_token=refresh, expires_in=expires_in)


async def refresh(core: Core, token: str) -> TokenPair:
    """Rotate a refresh token; reuse of a rotated one revokes its family."""
    token_hash = hash_refresh_token(token)

    def rotate(conn: sqlite3.Connection) -> tuple[str, int, str] | None:
        row = user_sql.refresh_token_by_hash(conn, token_hash)
        if row is None:
            return None
        now = now_iso()
        if row["used_at"] is not None or row["revoked_at"] is not None:
            user_sql.revoke_family(conn, row["family_id"], now)
            return None
        if parse_iso(row["expires_at"]) <= utcnow():
            return None
        user = user_sql.user_by_id(conn, row["user_id"])
        if user is None or user["disabled_at"] is not None:
            return None
        if not user_sql.mark_refresh_used(conn, row["id"], now):
            user_sql.revoke_family(conn, row["family_id"], now)
            return None
        new = _issue_refresh(
            core, conn, row["user_id"], row["family_id"], row["id"], row["family_expires_at"]
        )
        return row["user_id"], user["token_version"], new

    result = await core.system.write(rotate)
    if result is None:
        raise Unauthorized(INVALID_REFRESH)
    user_id, token_version, new_token = result
    return _token_pair(core, user_id, token_version, new_token)


async def logout(core: Core, token: str) -> None:
    """Revoke the token's whole family; unknown tokens are accepted silently (idempotent)."""
    token_hash = hash_refresh_token(token)

    def revoke(conn: sqlite3.Connection) -> None:
        row = user_sql.refresh_token_by_hash(conn, token_hash)
        if row is not None:
            user_sql.revoke_family(conn, row["family_id"], now_iso())

    await core.system.write(revoke)


async def authenticate(core: Core, bearer: str) -> Principal:
    """Validate an access token; no password hashing, usually no database hop."""
    claims = core.tokens.decode_access(bearer)
    state = core.user_states.get(claims.user_id)
    if state is None:
        row = await core.system.read(lambda conn: user_sql.user_by_id(conn, claims.user_id))
        if row is None:
            raise Unauthorized("invalid or expired token")
        state = (row["token_version"], row["disabled_at"] is not None)
        core.user_states[claims.user_id] = state
    token_version, disabled = state
    if disabled or claims.token_version != token_version:
        raise Unauthorized("invalid or expired token")
    return Principal(user_id=claims.user_id)


async def get_user(core: Core, user_id: str) -> Me:
    row = await core.system.read(lambda conn: user_sql.user_by_id(conn, user_id))
    if row is None:
        raise NotFound("user not found")
    return to_me(row)


async def list_users(core: Core, limit: int, cursor: str | None) -> Page[User]:
    """Every live account in email order (the operator's directory: `rhythm user list`)."""
    after = decode_cursor(cursor, (str,))[0] if cursor else None
    rows = await core.system.read(lambda conn: user_sql.list_users(conn, after, limit + 1))
    users = [to_user(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items=users, next_cursor=encode_cursor([users[-1].email]) if more else None)


async def users_named(core: Core, user_ids: Collection[str]) -> dict[str, User]:
    """The accounts behind these ids (unknown ids are left out), to show people by name."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = await core.system.read(lambda conn: user_sql.users_by_ids(conn, wanted))
    return {row["id"]: to_user(row) for row in rows}


async def update_me(core: Core, principal: Principal, patch: UserPatch) -> Me:
    """Change display name, password and/or notification preferences; a password change
    logs out everywhere."""
    fields: dict[str, object] = {}
    if patch.display_name is not None:
        fields["display_name"] = patch.display_name
    if patch.notifications is not None and patch.notifications.email is not None:
        fields["notify_email"] = int(patch.notifications.email)
    if patch.password is not None:
        await _check_current_password(core, principal, patch.current_password)
        fields["password_hash"] = await core.passwords.hash(patch.password)

    def apply(conn: sqlite3.Connection) -> sqlite3.Row:
        now = now_iso()
        if "password_hash" in fields:
            current = user_sql.user_by_id(conn, principal.user_id)
            assert current is not None
            fields["token_version"] = current["token_version"] + 1
            user_sql.revoke_user_tokens(conn, principal.user_id, now)
        if fields:
            user_sql.update_user(conn, principal.user_id, fields, now)
        row = user_sql.user_by_id(conn, principal.user_id)
        assert row is not None
        return row

    row = await core.system.write(apply)
    core.user_states.pop(principal.user_id, None)
    return to_me(row)


async def _check_current_password(core: Core, principal: Principal, current: str | None) -> None:
    row = await core.system.read(lambda conn: user_sql.user_by_id(conn, principal.user_id))
    if current is None or row is None:
        raise ValidationFailed([("current_password", "required to change the password")])
    if not await core.passwords.verify(row["password_hash"], current):
        raise ValidationFailed([("current_password", "does not match")])
