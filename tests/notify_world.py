"""A real SMTP server (aiosmtpd) on 127.0.0.1 and a Rhythm server that mails it.

The SMTP server runs on the test's own event loop (aiosmtpd's protocol under
`loop.create_server`, port 0), so nothing is mocked: Rhythm's aiosmtplib client
connects over TCP and the messages are parsed back from the bytes received.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import Api, make_settings
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services.notifications import NotificationService
from tracker.settings import Settings

MAIL_FROM = "Rhythm <rhythm@example.com>"
PUBLIC_URL = "https://rhythm.example.com"


@dataclass
class Inbox:
    """What the SMTP server received: one parsed message per DATA."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


async def smtp_server() -> tuple[asyncio.Server, int, Inbox]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="smtp.test", enable_SMTPUTF8=True), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    return server, port, inbox


def notify_settings(data_dir: Path, port: int, window: float = 1.0, **extra: Any) -> Settings:
    return make_settings(
        data_dir,
        smtp_url=f"smtp://127.0.0.1:{port}",
        mail_from=MAIL_FROM,
        notify_batch_seconds=window,
        public_url=PUBLIC_URL,
        **extra,
    )


@dataclass
class Rhythm:
    """One running Rhythm server (real aiohttp test server) and its API helpers."""

    client: TestClient
    api: Api

    @property
    def service(self) -> NotificationService:
        core = self.client.app[CORE]
        found = [s for s in core.background.running if s.name == "notifications"]
        assert found, "the notification service is not running"
        service = found[0]
        assert isinstance(service, NotificationService)
        return service

    async def queued(self) -> None:
        """Wait until every committed change went through the feed consumer."""
        service = self.service
        await service.core.scan.idle()  # the start-up scan poked the orgs with a backlog
        await service.consumer.idle()

    async def settled(self) -> None:
        """Wait until every open window was sent (or dropped)."""
        await self.service.idle()

    async def call(self, method: str, path: str, who: dict[str, Any], **kw: Any) -> Any:
        response = await self.client.request(method, path, headers=who["headers"], **kw)
        text = await response.text()
        assert response.status < 300, f"{method} {path}: {response.status} {text}"
        return await response.json() if text else None


async def start_rhythm(settings: Settings) -> Rhythm:
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    return Rhythm(client, Api(client))


async def running(settings: Settings) -> AsyncIterator[Rhythm]:
    rhythm = await start_rhythm(settings)
    try:
        yield rhythm
    finally:
        await rhythm.client.close()


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
