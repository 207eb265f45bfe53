"""`ctx.email{…}` from scripts, end to end: a real Rhythm server, the script workers, and
a real SMTP server (aiosmtpd) on 127.0.0.1 — no mocks (docs/scripting.md)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.notify_world import Inbox, Rhythm, body_text, notify_settings, smtp_server, start_rhythm
from tests.test_notifications import Team, make_team, queue_size, tenant_rows
from tracker.http.keys import CORE
from tracker.services.script_triggers import ScriptEvents

NOTIFY = """
on_event("issue.created", function(ctx)
  ctx.email{to = "bob@example.com", subject = "New: " .. ctx.issue.title,
            body = "Please look at " .. ctx.issue.key .. "\\nThanks."}
end)
"""


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[int, Inbox]]:
    server, port, inbox = await smtp_server()
    yield port, inbox
    server.close()
    await server.wait_closed()


@pytest.fixture
async def rhythm(tmp_path: Path, smtp: tuple[int, Inbox]) -> AsyncIterator[Rhythm]:
    server = await start_rhythm(script_settings(tmp_path / "data", smtp[0]))
    yield server
    await server.client.close()


@pytest.fixture
def inbox(smtp: tuple[int, Inbox]) -> Inbox:
    return smtp[1]


def script_settings(data: Path, port: int) -> Any:
    return notify_settings(data, port, window=1.0, script_timeout_ms=500)


async def save_script(team: Team, source: str, name: str = "mailer") -> dict[str, Any]:
    return await team.call("POST", "/scripts", team.olga,  # type: ignore[no-any-return]
                           json={"name": name, "source": source})  # fmt: skip


async def runs_of(team: Team, script: dict[str, Any]) -> list[dict[str, Any]]:
    body = await team.call("GET", f"/scripts/{script['id']}/runs", team.olga)
    return body["items"]  # type: ignore[no-any-return]


async def scripts_done(rhythm: Rhythm) -> None:
    await asyncio.sleep(0.05)
    running = rhythm.client.app[CORE].background.running
    await next(s for s in running if isinstance(s, ScriptEvents)).idle()


async def settled(rhythm: Rhythm) -> None:
    """Scripts ran, their emails went out (or were dropped)."""
    await scripts_done(rhythm)
    await rhythm.queued()
    await rhythm.settled()


async def test_a_script_emails_a_member_once_even_across_a_restart(
    tmp_path: Path, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    settings = script_settings(tmp_path / "data", port)
    first = await start_rhythm(settings)
    try:
        team = await make_team(first)
        script = await save_script(team, NOTIFY)
        issue = await team.call("POST", "/issues", team.ann, json={"title": "Login is slow"})
        await settled(first)
        (message,) = inbox.messages
        assert message["To"] == "bob@example.com"
        assert message["Subject"] == "[WEB] New: Login is slow"
        text = body_text(message).replace("\r\n", "\n")
        assert text.startswith(f"Please look at {issue['key']}\nThanks.\n")
        assert "'mailer' of project WEB" in text
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["Message-ID"].startswith("<script.")
        (run,) = await runs_of(team, script)
        assert run["status"] == "ok", run
        assert await queue_size(first, team) == 0
    finally:
        await first.client.close()

    second = await start_rhythm(settings)  # the run is not repeated, the mail not resent
    try:
        await settled(second)
        await asyncio.sleep(0.5)
        assert len(inbox.messages) == 1
        team.rhythm = second
        assert len(await runs_of(team, script)) == 1
    finally:
        await second.client.close()


async def test_a_mail_queued_while_smtp_is_down_is_sent_once_after_a_restart(
    tmp_path: Path, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    with socket.socket() as probe:  # a port nobody listens on: the SMTP server is "down"
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    down = await start_rhythm(script_settings(tmp_path / "data", dead))
    try:
        team = await make_team(down)
        await save_script(team, NOTIFY)
        await team.call("POST", "/issues", team.ann, json={"title": "Queued"})
        await scripts_done(down)
        await asyncio.sleep(0.3)  # the sender tried and failed: the row stays
        assert await queue_size(down, team) == 1
    finally:
        await down.client.close()
    assert inbox.messages == []

    up = await start_rhythm(script_settings(tmp_path / "data", port))
    try:
        team.rhythm = up
        await settled(up)
        for _ in range(50):
            if inbox.messages:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        (message,) = inbox.messages
        assert message["Subject"] == "[WEB] New: Queued"
        assert await queue_size(up, team) == 0
    finally:
        await up.client.close()


async def test_a_non_member_is_refused_and_the_run_changes_nothing(
    rhythm: Rhythm, inbox: Inbox
) -> None:
    team = await make_team(rhythm, visibility="private")  # Carol: in the org, not the project
    stranger = await rhythm.api.user("stranger@example.com")
    assert stranger["id"]
    source = """
on_event("issue.created", function(ctx)
  ctx.issue:add_comment("mailing people")
  ctx.email{to = {"bob@example.com", "%s"}, subject = "Hi", body = "x"}
end)
"""
    for target in ("carol@example.com", "stranger@example.com", "nobody@example.com",
                   team.carol["id"]):  # fmt: skip
        script = await save_script(team, source % target, name=f"m-{len(target)}")
        issue = await team.call("POST", "/issues", team.ann, json={"title": "t"})
        await settled(rhythm)
        (run,) = await runs_of(team, script)
        assert run["status"] == "error"
        assert run["error"] == f"line 4: ctx.email refused: not a member of project WEB: {target}"
        comments = await team.call("GET", f"/issues/{issue['number']}/comments", team.olga)
        assert comments["items"] == []  # the whole run rolled back
        await team.call("DELETE", f"/scripts/{script['id']}", team.olga)
    assert await queue_size(rhythm, team) == 0
    assert inbox.messages == []


async def test_limits_email_off_and_ids(rhythm: Rhythm, inbox: Inbox) -> None:
    team = await make_team(rhythm)
    flood = """
on_event("issue.created", function(ctx)
  for i = 1, 11 do ctx.email{to = "bob@example.com", subject = "n" .. i, body = ""} end
end)
"""
    script = await save_script(team, flood, name="flood")
    await team.call("POST", "/issues", team.ann, json={"title": "t"})
    await settled(rhythm)
    (run,) = await runs_of(team, script)
    assert run["status"] == "error" and run["error"] == "line 3: more than 10 emails in one run"
    await team.call("DELETE", f"/scripts/{script['id']}", team.olga)

    injected = 'on_event("issue.created", function(ctx) ctx.email{to = "bob@example.com", ' \
               'subject = "a\\nBcc: x@evil.test", body = ""} end)'  # fmt: skip
    script = await save_script(team, injected, name="inject")
    await team.call("POST", "/issues", team.ann, json={"title": "t"})
    await settled(rhythm)
    (run,) = await runs_of(team, script)
    assert run["status"] == "error" and "subject must be one line" in run["error"]
    await team.call("DELETE", f"/scripts/{script['id']}", team.olga)

    # a user id reaches the member; a member whose email is off gets nothing
    to = f'{{"{team.bob["id"]}", "{team.ann["id"]}"}}'
    by_id = f'on_event("issue.created", function(ctx) ctx.email{{to = {to}, subject = "by id", '
    by_id += 'body = "b"} end)'

    await rhythm.call("PATCH", "/api/v1/users/me", team.ann,
                      json={"notifications": {"email": False}})  # fmt: skip
    script = await save_script(team, by_id, name="by-id")
    await team.call("POST", "/issues", team.olga, json={"title": "t"})
    await settled(rhythm)
    (run,) = await runs_of(team, script)
    assert run["status"] == "ok", run
    assert [m["To"] for m in inbox.messages] == ["bob@example.com"]
    assert await queue_size(rhythm, team) == 0  # Ann's copy was dropped at send time


async def test_preview_shows_the_email_and_sends_nothing(rhythm: Rhythm, inbox: Inbox) -> None:
    team = await make_team(rhythm)
    source = """
on_event("issue.updated", function(ctx)
  ctx.email{to = "bob@example.com", subject = "Changed " .. ctx.issue.key, body = "see it"}
end)
"""
    await save_script(team, source, name="on-update")
    issue = await team.call("POST", "/issues", team.ann, json={"title": "t"})
    await settled(rhythm)
    preview = await team.call("POST", f"/issues/{issue['number']}/preview", team.ann,
                              json={"title": "t2"})  # fmt: skip
    assert preview["emails"] == [
        {"to": ["bob@example.com"], "subject": f"Changed {issue['key']}", "body": "see it",
         "by": "script:on-update", "sent": False}
    ]  # fmt: skip
    assert [r["status"] for r in preview["runs"]] == ["ok"]
    await settled(rhythm)
    await asyncio.sleep(0.3)
    assert inbox.messages == []
    assert await queue_size(rhythm, team) == 0
    rows = await tenant_rows(rhythm, team, "SELECT count(*) AS n FROM notify_events")
    assert rows[0]["n"] == 0
