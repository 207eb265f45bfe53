"""Links in notification emails: the issue, and one-click unsubscribe (RFC 8058).

The unsubscribe link carries `user_id.mac` signed with the server's secret
(`TokenCodec.sign`), so a mail client can POST it with no login; it turns the
person's notification email off, exactly like `PATCH /users/me
{"notifications": {"email": false}}`.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import quote

from tracker.domain.ids import now_iso
from tracker.domain.models.accounts import Notifications
from tracker.errors import NotFound
from tracker.services.runtime import Core
from tracker.storage import notifications as notify_sql

UNSUBSCRIBE = "unsubscribe"
API = "/api/v1"


def issue_url(core: Core, org_slug: str, issue_key: str) -> str:
    """Where an email's "Open" link points (the org-wide issue address)."""
    return f"{core.settings.base_url}{API}/orgs/{quote(org_slug)}/issues/{quote(issue_key)}"


def unsubscribe_url(core: Core, user_id: str) -> str:
    token = core.tokens.sign(UNSUBSCRIBE, user_id)
    return f"{core.settings.base_url}{API}/notifications/unsubscribe/{quote(token)}"


async def unsubscribe(core: Core, token: str) -> Notifications:
    """Turn email notifications off for the person the token names (404 if forged)."""
    user_id = core.tokens.verify_signed(UNSUBSCRIBE, token)
    if user_id is None:
        raise NotFound("unknown unsubscribe link")

    def apply(conn: sqlite3.Connection) -> None:
        notify_sql.set_email_opt_in(conn, user_id, False, now_iso())

    await core.system.write(apply)
    return Notifications(email=False)
