"""SMTP through aiosmtplib, configured by one URL (RHYTHM_SMTP_URL).

    smtp://[user:password@]host[:port][?starttls=required|off]   port 587 by default
    smtps://[user:password@]host[:port]                           implicit TLS, port 465

`smtp://` upgrades with STARTTLS when the server offers it (`required`: refuse
to send without it; `off`: never try). User and password are percent-decoded.
The password never appears in logs (`SmtpTarget.__repr__`, `describe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

#: Seconds for connecting and for each SMTP command.
TIMEOUT = 30.0


class MailRefused(Exception):
    """The server refused this message for good (e.g. unknown recipient): do not retry."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool = False
    #: True: STARTTLS required; None: when offered; False: never
    start_tls: bool | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        scheme = "smtps" if self.implicit_tls else "smtp"
        who = f"{self.username}@" if self.username else ""
        return f"{scheme}://{who}{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """RHYTHM_SMTP_URL -> SmtpTarget; ValueError on anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("an SMTP URL is smtp://host[:port] or smtps://host[:port]")
    implicit = parts.scheme == "smtps"
    starttls_mode = parse_qs(parts.query).get("starttls", ["auto"])[-1].lower()
    modes: dict[str, bool | None] = {"auto": None, "required": True, "off": False}
    if starttls_mode not in modes:
        raise ValueError("starttls must be required or off")
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if implicit else 587),
        implicit_tls=implicit,
        start_tls=False if implicit else modes[starttls_mode],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class Mailer:
    """Sends one message per call (a new connection each time: notifications are few)."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target

    async def send(self, message: EmailMessage) -> None:
        """Deliver to the server; MailRefused when it rejects the message for good,
        any other exception is transient (the caller keeps the message and retries)."""
        target = self.target
        try:
            await aiosmtplib.send(
                message,
                hostname=target.host,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.implicit_tls,
                start_tls=target.start_tls,
                timeout=TIMEOUT,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise MailRefused(str(exc)) from exc
        except (aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPSenderRefused):
            raise  # the configuration is wrong: keep the mail until an operator fixes it
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:  # this message is refused (content, size...)
                raise MailRefused(str(exc)) from exc
            raise
