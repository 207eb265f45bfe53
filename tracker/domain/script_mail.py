"""The email a script sends with `ctx.email{…}` (docs/scripting.md, docs/notifications.md).

The script writes the subject and the body; Rhythm adds the envelope every
notification has: `[KEY]` in front of the subject, a footer naming the script
and the project, one-click `List-Unsubscribe`, `Auto-Submitted`, and a
Message-ID stable for this email and recipient (a resend after a crash keeps it,
so mail clients drop the duplicate).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from tracker.domain.notifications import domain_of


@dataclass(frozen=True)
class ScriptMail:
    to: str
    sender: str
    recipient_id: str
    mail_id: str  # a UUID made when the script ran
    script: str
    org_slug: str
    project_key: str
    subject: str
    body: str
    unsubscribe: str


def compose_script_mail(mail: ScriptMail) -> EmailMessage:
    """Plain text plus a small HTML part (the body escaped, line breaks kept)."""
    domain = domain_of(mail.sender)
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = mail.to
    message["Subject"] = f"[{mail.project_key}] {' '.join(mail.subject.split())}"
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<script.{mail.mail_id}.{mail.recipient_id or 'x'}@{domain}>"
    message["List-Id"] = f"<{mail.project_key.lower()}.{mail.org_slug}.{domain}>"
    message["List-Unsubscribe"] = f"<{mail.unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Rhythm-Script"] = " ".join(mail.script.split())[:200] or "script"
    footer = (
        f"Sent by the script {mail.script!r} of project {mail.project_key} "
        f"({mail.org_slug}), because you are a member of the project."
    )
    stop = (
        f"Stop all notification emails: {mail.unsubscribe} (POST), or "
        'PATCH /api/v1/users/me {"notifications": {"email": false}}.'
    )
    message.set_content("\n".join([mail.body, "", "-- ", footer, stop]))
    message.add_alternative(
        f'<pre style="white-space:pre-wrap;font-family:inherit">{html.escape(mail.body)}</pre>'
        f'<p style="color:#666;font-size:small">{html.escape(footer)} '
        f'<a href="{html.escape(mail.unsubscribe)}">Unsubscribe</a></p>',
        subtype="html",
    )
    return message
