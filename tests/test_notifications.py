"""Email notifications end to end: a real Rhythm server mailing a real SMTP server.

Everything goes through the HTTP API and over TCP to aiosmtpd on 127.0.0.1;
the batching window is set small (RHYTHM_NOTIFY_BATCH_SECONDS) so tests wait
about a second for a window to close.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import make_settings
from tests.notify_world import (
    MAIL_FROM,
    PUBLIC_URL,
    Inbox,
    Rhythm,
    body_text,
    notify_settings,
    smtp_server,
    start_rhythm,
)
from tracker.http.keys import CORE
from tracker.outbound.mail import Mailer, parse_smtp_url

ORGS = "/api/v1/orgs"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[int, Inbox]]:
    server, port, inbox = await smtp_server()
    yield port, inbox
    server.close()
    await server.wait_closed()


@pytest.fixture
def window() -> float:
    """RHYTHM_NOTIFY_BATCH_SECONDS of the `rhythm` server (a test overrides it by parameter)."""
    return 1.0


@pytest.fixture
async def rhythm(tmp_path: Path, smtp: tuple[int, Inbox], window: float) -> AsyncIterator[Rhythm]:
    port, _ = smtp
    server = await start_rhythm(notify_settings(tmp_path / "data", port, window=window))
    yield server
    await server.client.close()


@pytest.fixture
def inbox(smtp: tuple[int, Inbox]) -> Inbox:
    return smtp[1]


class Team:
    """Owner Olga; Ann, Bob (developers) and Carol (org member) in project WEB."""

    def __init__(self, rhythm: Rhythm, people: dict[str, dict[str, Any]], org: dict[str, Any]):
        self.rhythm = rhythm
        self.people = people
        self.org = org

    def __getattr__(self, name: str) -> dict[str, Any]:
        return self.people[name]

    def url(self, path: str = "") -> str:
        return f"{ORGS}/{self.org['slug']}/projects/WEB{path}"

    async def call(self, method: str, path: str, who: dict[str, Any], **kw: Any) -> Any:
        return await self.rhythm.call(method, self.url(path), who, **kw)


async def make_team(rhythm: Rhythm, visibility: str = "org") -> Team:
    api = rhythm.api
    people = {n: await api.user(f"{n}@example.com") for n in ("olga", "ann", "bob", "carol")}
    org = await api.org(people["olga"])
    await api.project(people["olga"], org, key="WEB", visibility=visibility)
    base = f"{ORGS}/{org['slug']}"
    for name in ("ann", "bob", "carol"):
        await rhythm.call("POST", f"{base}/members", people["olga"],
                          json={"user_id": people[name]["id"], "role": "member"})  # fmt: skip
    for name in ("ann", "bob"):
        await rhythm.call("POST", f"{base}/projects/WEB/members", people["olga"],
                          json={"user_id": people[name]["id"], "role": "developer"})  # fmt: skip
    return Team(rhythm, people, org)


async def test_ten_quick_edits_make_one_email_to_the_watcher_and_none_to_the_editor(
    rhythm: Rhythm, inbox: Inbox
) -> None:
    team = await make_team(rhythm)
    issue = await team.call("POST", "/issues", team.ann, json={"title": "Login is slow"})
    n = issue["number"]
    for i in range(10):  # ten quick edits by Bob
        await team.call("PATCH", f"/issues/{n}", team.bob, json={"title": f"Login is slow {i}"})
    await rhythm.settled()

    assert [m["To"] for m in inbox.messages] == ["ann@example.com"]  # Bob gets none
    (message,) = inbox.messages
    text = body_text(message)
    for i in range(10):
        assert f"→ Login is slow {i}" in text
    assert text.count("bob changed title") == 10
    assert message["Subject"] == "[WEB-1] Login is slow 9"
    assert message["From"] == MAIL_FROM
    # threads per issue: every email about WEB-1 replies to the same root id
    assert message["In-Reply-To"] == message["References"] == f"<issue.{issue['id']}@example.com>"
    assert message["Message-ID"].endswith("@example.com>")
    assert f"{PUBLIC_URL}/api/v1/orgs/{team.org['slug']}/issues/WEB-1" in text
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "Login is slow 9" in str(html.get_content())
    assert message["List-Unsubscribe"].startswith(f"<{PUBLIC_URL}/api/v1/notifications/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert await queue_size(rhythm, team) == 0

    # a second window is a second email in the same thread
    await team.call("POST", f"/issues/{n}/comments", team.bob, json={"body": "Fixed, I think"})
    await rhythm.settled()
    assert len(inbox.to("ann@example.com")) == 2
    second = inbox.messages[-1]
    assert "bob commented: Fixed, I think" in body_text(second)
    assert second["References"] == message["References"]
    assert second["Message-ID"] != message["Message-ID"]


@pytest.mark.parametrize("window", [2.5])  # room to remove Ann while her window is open
async def test_after_losing_access_nothing_more_arrives_even_when_already_queued(
    rhythm: Rhythm, inbox: Inbox
) -> None:
    team = await make_team(rhythm, visibility="private")
    issue = await team.call("POST", "/issues", team.bob, json={"title": "Secret"})
    n = issue["number"]
    await team.call("PUT", f"/issues/{n}/watchers/me", team.ann)
    await team.call("PATCH", f"/issues/{n}", team.bob, json={"priority": "major"})
    await rhythm.settled()
    assert len(inbox.to("ann@example.com")) == 1

    await team.call("PATCH", f"/issues/{n}", team.bob, json={"priority": "critical"})
    await rhythm.queued()  # queued for Ann while she could still see it...
    assert await queue_size(rhythm, team) == 1
    await team.call("DELETE", f"/members/{team.ann['id']}", team.olga)  # ...then removed
    await rhythm.settled()
    await team.call("PATCH", f"/issues/{n}", team.bob, json={"priority": "minor"})
    await rhythm.settled()
    assert len(inbox.to("ann@example.com")) == 1  # checked at send time: nothing more
    assert await queue_size(rhythm, team) == 0


async def test_a_deleted_org_is_forgotten_by_the_sender(rhythm: Rhythm, inbox: Inbox) -> None:
    team = await make_team(rhythm)
    issue = await team.call("POST", "/issues", team.ann, json={"title": "Gone soon"})
    await team.call("PATCH", f"/issues/{issue['number']}", team.bob, json={"priority": "major"})
    await rhythm.queued()
    await rhythm.call("DELETE", f"{ORGS}/{team.org['slug']}", team.olga)  # archived
    await rhythm.settled()  # returns: no retry loop on a tenant that left
    assert inbox.messages == []


async def test_a_bulk_import_notifies_nobody(rhythm: Rhythm, inbox: Inbox) -> None:
    team = await make_team(rhythm)
    records = [{"title": f"Old {i}", "reporter": "ann@example.com"} for i in range(25)]
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    response = await rhythm.client.post(
        team.url("/issues/import"), data=body,
        headers={**team.olga["headers"], "Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert response.status == 200, await response.text()
    await rhythm.settled()
    assert inbox.messages == []  # not 25 emails "olga created the issue" to Ann
    await team.call("PATCH", "/issues/3", team.bob, json={"priority": "major"})
    await rhythm.settled()
    assert [m["Subject"] for m in inbox.to("ann@example.com")] == ["[WEB-3] Old 2"]


async def test_a_mention_notifies_the_member_named(rhythm: Rhythm, inbox: Inbox) -> None:
    team = await make_team(rhythm)
    issue = await team.call("POST", "/issues", team.ann, json={"title": "Broken build"})
    n = issue["number"]
    body = "@carol can you look? (cc @nobody, mail ann@example.com)"
    await team.call("POST", f"/issues/{n}/comments", team.bob, json={"body": body})
    await rhythm.settled()
    assert sorted(m["To"] for m in inbox.messages) == ["ann@example.com", "carol@example.com"]
    (to_carol,) = inbox.to("carol@example.com")
    assert "bob commented: @carol can you look?" in body_text(to_carol)
    # a mention is not a subscription: the next edit reaches Ann (reporter) only
    await team.call("PATCH", f"/issues/{n}", team.bob, json={"priority": "major"})
    await rhythm.settled()
    assert len(inbox.to("carol@example.com")) == 1
    assert len(inbox.to("ann@example.com")) == 2
    # a mention in a description counts too, and only a newly added one on edit
    await team.call("PATCH", f"/issues/{n}", team.ann, json={"description": "ping @carol"})
    await team.call("PATCH", f"/issues/{n}", team.ann, json={"description": "ping @carol again"})
    await rhythm.settled()
    assert len(inbox.to("carol@example.com")) == 2


async def test_opt_out_and_one_click_unsubscribe_are_honoured(rhythm: Rhythm, inbox: Inbox) -> None:
    team = await make_team(rhythm)
    issue = await team.call("POST", "/issues", team.ann, json={"title": "Typo"})
    await team.call("POST", "/issues", team.carol, json={"title": "Carol's"})
    n = issue["number"]
    me = await rhythm.call("GET", "/api/v1/users/me", team.ann)
    assert me["notifications"] == {"email": True}
    me = await rhythm.call("PATCH", "/api/v1/users/me", team.ann,
                           json={"notifications": {"email": False}})  # fmt: skip
    assert me["notifications"] == {"email": False}
    await team.call("PATCH", f"/issues/{n}", team.bob, json={"priority": "major"})
    await team.call("PATCH", "/issues/2", team.bob, json={"priority": "major"})
    await rhythm.settled()
    assert [m["To"] for m in inbox.messages] == ["carol@example.com"]  # Ann opted out

    # the List-Unsubscribe link turns Carol's email off with no login (RFC 8058 POST)
    link = inbox.messages[0]["List-Unsubscribe"].strip("<>")
    response = await rhythm.client.post(urlsplit(link).path, data="List-Unsubscribe=One-Click")
    assert response.status == 200 and (await response.json()) == {"email": False}
    me = await rhythm.call("GET", "/api/v1/users/me", team.carol)
    assert me["notifications"] == {"email": False}
    forged = urlsplit(link).path[:-3] + "AAA"
    assert (await rhythm.client.post(forged)).status == 404
    await team.call("PATCH", "/issues/2", team.bob, json={"priority": "minor"})
    await rhythm.settled()
    assert len(inbox.messages) == 1

    bad = await rhythm.client.patch("/api/v1/users/me", headers=team.ann["headers"],
                                    json={"notifications": {"email": "no"}})  # fmt: skip
    assert bad.status == 422


async def test_an_explicit_unwatch_silences_a_reporter_and_watch_brings_them_back(
    rhythm: Rhythm, inbox: Inbox
) -> None:
    team = await make_team(rhythm)
    issue = await team.call("POST", "/issues", team.ann, json={"title": "Flaky test"})
    n = issue["number"]
    assert await team.call("GET", f"/issues/{n}/watchers/me", team.ann) == {
        "watching": True, "reasons": ["reporter"], "choice": None}  # fmt: skip
    gone = await team.call("DELETE", f"/issues/{n}/watchers/me", team.ann)
    assert gone == {"watching": False, "reasons": ["reporter"], "choice": "unwatch"}
    await team.call("PATCH", f"/issues/{n}", team.bob, json={"priority": "major"})
    await rhythm.settled()
    assert inbox.messages == []

    back = await team.call("PUT", f"/issues/{n}/watchers/me", team.ann)
    assert back == {"watching": True, "reasons": ["reporter", "watching"], "choice": "watch"}
    await team.call("PUT", f"/issues/{n}/watchers/me", team.carol)  # anyone who can read
    await team.call("PATCH", f"/issues/{n}", team.bob, json={"priority": "minor"})
    await rhythm.settled()
    assert sorted(m["To"] for m in inbox.messages) == ["ann@example.com", "carol@example.com"]


async def test_being_assigned_notifies_the_assignee(rhythm: Rhythm, inbox: Inbox) -> None:
    team = await make_team(rhythm)
    issue = await team.call("POST", "/issues", team.bob, json={"title": "Do it"})
    await team.call("PUT", f"/issues/{issue['number']}/assignees", team.bob,
                    json={"user_ids": [team.ann["id"]]})  # fmt: skip
    await rhythm.settled()
    (message,) = inbox.messages
    assert message["To"] == "ann@example.com"
    assert "bob assigned ann" in body_text(message)


async def test_a_restart_mid_queue_sends_once(tmp_path: Path, smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    settings = notify_settings(tmp_path / "data", port, window=3.0)
    first = await start_rhythm(settings)
    team = await make_team(first)
    issue = await team.call("POST", "/issues", team.ann, json={"title": "Crashy"})
    for priority in ("major", "critical", "minor"):
        await team.call("PATCH", f"/issues/{issue['number']}", team.bob,
                        json={"priority": priority})  # fmt: skip
    await first.queued()
    assert await queue_size(first, team) == 3
    await first.client.close()  # stopped while the window is open
    assert inbox.messages == []

    second = await start_rhythm(settings)
    try:
        await second.queued()
        await second.settled()
        await asyncio.sleep(0.3)
        (message,) = inbox.messages
        text = body_text(message)
        assert text.count("bob changed priority") == 3  # each change once, in one email
        assert "normal → major" in text and "major → critical" in text
        team.rhythm = second
        assert await queue_size(second, team) == 0
    finally:
        await second.client.close()


@pytest.mark.parametrize("hook", ["queued", "before_queue"])
async def test_a_server_killed_mid_queue_sends_each_change_once_after_restart(
    tmp_path: Path, smtp: tuple[int, Inbox], hook: str
) -> None:
    """SIGKILL with the queue committed (window open), or inside the consumer's own
    transaction: after a restart Ann gets one email listing each of Bob's changes once."""
    port, inbox = smtp
    data, out = tmp_path / "data", tmp_path / "ids.json"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.notify_crash_child", str(data), str(port), hook, str(out),
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert await asyncio.wait_for(child.wait(), 120) == -signal.SIGKILL
    assert inbox.messages == []
    ids = json.loads(out.read_text())
    conn = sqlite3.connect(f"file:{data / ids['org'] / 'tracker.db'}?mode=ro", uri=True)
    try:
        (pending,) = conn.execute("SELECT count(*) FROM notify_pending").fetchone()
        (cursor,) = conn.execute(
            "SELECT seq FROM consumer_cursors WHERE name = 'notifications'"
        ).fetchone()
        (head,) = conn.execute("SELECT max(seq) FROM changes").fetchone()
    finally:
        conn.close()
    if hook == "queued":
        assert (pending, cursor) == (3, head)  # all queued, the window still open
    else:
        assert pending == 0 and cursor < head  # the consumer's unit never committed
    restarted = await start_rhythm(notify_settings(data, port, window=2.0))
    try:
        await restarted.queued()
        await restarted.settled()
        core = restarted.client.app[CORE]
        async with core.tenants.lease(ids["org"]) as db:
            edits = await db.read(lambda c: c.execute(
                "SELECT count(*) FROM changes WHERE entity = 'issue' AND field = 'priority'"
            ).fetchone()[0])  # fmt: skip
        assert edits >= 1
        (message,) = inbox.messages
        assert message["To"] == "ann@example.com"
        assert body_text(message).count("bob changed priority") == edits
    finally:
        await restarted.client.close()


async def test_watchers_list_and_the_watch_rows_are_change_logged(
    rhythm: Rhythm, inbox: Inbox
) -> None:
    team = await make_team(rhythm)
    issue = await team.call("POST", "/issues", team.ann, json={"title": "List"})
    n = issue["number"]
    await team.call("POST", f"/issues/{n}/comments", team.bob, json={"body": "me too"})
    await team.call("PUT", f"/issues/{n}/watchers/me", team.carol)
    await team.call("PUT", f"/issues/{n}/watchers/me", team.carol)  # idempotent
    page = await team.call("GET", f"/issues/{n}/watchers", team.carol)
    assert page["next_cursor"] is None
    reasons = {w["email"]: w["reasons"] for w in page["items"]}
    assert reasons == {"ann@example.com": ["reporter"], "bob@example.com": ["commenter"],
                       "carol@example.com": ["watching"]}  # fmt: skip
    await team.call("DELETE", f"/issues/{n}/watchers/me", team.bob)
    page = await team.call("GET", f"/issues/{n}/watchers", team.carol)
    assert "bob@example.com" not in {w["email"] for w in page["items"]}
    rows = await tenant_rows(
        rhythm,
        team,
        "SELECT op, field, new FROM changes WHERE entity = 'issue_watcher' ORDER BY seq",
    )
    assert [(r["op"], r["field"]) for r in rows] == [("create", None), ("create", None)]
    # no event: a watch is nobody else's news (history and webhooks stay quiet)
    history = await team.call("GET", f"/issues/{n}/history", team.ann)
    assert all(item.get("entity") != "issue_watcher" for item in history["items"])


async def test_watcher_routes_need_read_access_and_a_real_issue(rhythm: Rhythm) -> None:
    team = await make_team(rhythm, visibility="private")
    await team.call("POST", "/issues", team.bob, json={"title": "Hidden"})
    client = rhythm.client
    carol = team.carol["headers"]  # an org member, not in the private project
    for method in ("GET", "PUT", "DELETE"):
        assert (await client.request(method, team.url("/issues/1/watchers/me"),
                                     headers=carol)).status == 404  # fmt: skip
        assert (await client.request(method, team.url("/issues/99/watchers/me"),
                                     headers=team.ann["headers"])).status == 404  # fmt: skip
    assert (await client.get(team.url("/issues/1/watchers"))).status == 401
    assert (
        await client.get(team.url("/issues/x/watchers"), headers=team.ann["headers"])
    ).status == 404


async def test_notifications_off_without_smtp_is_said_once_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tracker.services.notifications")
    rhythm = await start_rhythm(make_settings(tmp_path / "data"))
    try:
        core = rhythm.client.app[CORE]
        service = next(s for s in core.background.running if s.name == "notifications")
        assert service.sender is None  # type: ignore[attr-defined]
        team = await make_team(rhythm)
        issue = await team.call("POST", "/issues", team.ann, json={"title": "Quiet"})
        await team.call("PUT", f"/issues/{issue['number']}/watchers/me", team.carol)
    finally:
        await rhythm.client.close()
    said = [r.getMessage() for r in caplog.records if "notifications are off" in r.getMessage()]
    assert len(said) == 1


async def test_an_smtp_server_that_is_down_keeps_the_mail_for_a_retry(
    tmp_path: Path, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    settings = notify_settings(tmp_path / "data", port=1, window=0.2)  # nothing listens on :1
    rhythm = await start_rhythm(settings)
    try:
        team = await make_team(rhythm)
        issue = await team.call("POST", "/issues", team.ann, json={"title": "Mail later"})
        await team.call("PATCH", f"/issues/{issue['number']}", team.bob, json={"priority": "major"})
        await rhythm.queued()
        sender = rhythm.service.sender
        assert sender is not None
        await asyncio.sleep(0.8)  # the window closed and the sender's attempt was refused
        assert await queue_size(rhythm, team) == 1  # kept, not dropped; retried in 30 s
        assert team.org["id"] in sender._due
        sender.mailer = Mailer(parse_smtp_url(f"smtp://127.0.0.1:{port}"))  # the server is back
        await sender.send_due(team.org["id"])
        assert [m["To"] for m in inbox.messages] == ["ann@example.com"]
        assert await queue_size(rhythm, team) == 0
    finally:
        await rhythm.client.close()


async def queue_size(rhythm: Rhythm, team: Team) -> int:
    rows = await tenant_rows(rhythm, team, "SELECT count(*) AS n FROM notify_pending")
    return int(rows[0]["n"])


async def tenant_rows(rhythm: Rhythm, team: Team, sql: str) -> list[dict[str, Any]]:
    core = rhythm.client.app[CORE]
    async with core.tenants.lease(team.org["id"]) as db:
        rows = await db.read(lambda conn: conn.execute(sql).fetchall())
    return [dict(row) for row in rows]
