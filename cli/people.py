"""People on the command line: named by email (or `me`, resolved by cli/target.py), shown
as "Display Name <email>", never as a bare user id."""

from __future__ import annotations

from collections.abc import Iterable

from tracker.core import Core
from tracker.services.accounts import users_named
from tracker.services.acting import person


async def ids_of(core: Core, names: Iterable[str]) -> list[str]:
    """User ids behind emails (or ids); NotFound names the first unknown person."""
    return [await person(core, name) for name in names]


async def names_of(core: Core, user_ids: Iterable[str | None]) -> dict[str, str]:
    """id -> "Display Name <email>" for every id that is an account."""
    users = await users_named(core, [u for u in user_ids if u])
    return {uid: shown(u.display_name, u.email) for uid, u in users.items()}


def shown(display_name: str, email: str) -> str:
    return f"{display_name} <{email}>" if display_name else email


def named(names: dict[str, str], user_id: str | None) -> str:
    """A person for a table cell; an id no longer behind an account stays visible as such."""
    if not user_id:
        return ""
    return names.get(user_id, f"(unknown user {user_id[:8]})")
