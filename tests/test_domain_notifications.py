"""The pure parts of notifications: mentions, notices, the email, the SMTP URL, link tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import make_settings
from tracker.auth.tokens import TokenCodec
from tracker.domain.changes import Change, Entity, Op
from tracker.domain.events import groups_of
from tracker.domain.notifications import (
    Mail,
    QueuedNotice,
    compose,
    describe,
    mentions,
    new_mentions,
    notice_of,
)
from tracker.outbound.mail import parse_smtp_url

AT = "2026-01-01T00:00:00.000Z"


def change(seq: int, entity: Entity, op: Op, **kw: object) -> Change:
    values: dict[str, object] = {
        "seq": seq, "id": f"c{seq}", "at": AT, "actor": "bob", "origin": "api",
        "entity": entity, "entity_id": "i1", "project": "p1", "op": op, "field": None,
        "old": None, "new": None, "batch": "b1",
    }  # fmt: skip
    values.update(kw)
    return Change(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("@ann please look", {"ann"}),
        ("thanks @Ann.", {"ann"}),
        ("(cc @carol, @dave)", {"carol", "dave"}),
        ("write to bob@example.com", set()),
        ("@ann@example.com knows", {"ann@example.com"}),
        ("path/@ann and x@ann", set()),
        ("", set()),
    ],
)
def test_mentions(text: str, found: set[str]) -> None:
    assert mentions(text) == found


def test_an_edit_notifies_only_mentions_it_adds() -> None:
    assert new_mentions("hi @ann", "hi @ann and @bob") == {"bob"}
    assert new_mentions(None, "@ann") == {"ann"}


def test_a_board_drag_is_nobodys_news_and_a_watch_is_no_event() -> None:
    drag = change(1, Entity.ISSUE, Op.UPDATE, field="rank", old="a", new="b")
    (group,) = groups_of((drag,))
    assert notice_of(group) is None
    watch = change(2, Entity.ISSUE_WATCHER, Op.CREATE, entity_id="i1:ann",
                   new={"issue_id": "i1", "user_id": "ann", "watching": True})  # fmt: skip
    assert groups_of((watch,)) == []


def test_a_notice_trims_long_values_and_names_assignees_and_mentions() -> None:
    rows = (
        change(1, Entity.ISSUE, Op.UPDATE, field="description", old="", new="@carol " + "x" * 5000,
               meta={"issue": "i1"}),
        change(2, Entity.ISSUE_ASSIGNEE, Op.CREATE, entity_id="i1:ann",
               new={"issue_id": "i1", "user_id": "ann"}, meta={"issue": "i1"}),
    )  # fmt: skip
    (group,) = groups_of(rows)
    notice = notice_of(group)
    assert notice is not None
    assert notice.mentioned == {"carol"} and notice.assigned == {"ann"}
    assert notice.seq == 2 and notice.actor == "bob"
    assert len(notice.summary["changes"][0]["new"]) == 1000


def test_describe_says_what_happened_in_words() -> None:
    names = {"bob": "Bob", "ann": "Ann"}
    summary = {
        "event": "issue.updated",
        "changes": [
            {"field": "status", "old": "Open", "new": "In Progress"},
            {"field": "assignees", "old": None, "new": "ann"},
            {"field": "tags", "old": "ui", "new": None},
            {"field": "comment", "old": None, "new": {"body": "Looks\n good"}},
            {"field": "due_date", "old": None, "new": "2026-02-01"},
            {"field": "attachment", "old": None, "new": {"filename": "crash.log"}},
        ],
    }
    assert describe(QueuedNotice(1, AT, "bob", summary), names) == [
        "Bob changed status: Open → In Progress",
        "Bob assigned Ann",
        "Bob removed tag ui",
        "Bob commented: Looks good",
        "Bob changed due_date: (none) → 2026-02-01",
        "Bob attached crash.log",
    ]
    created = {"event": "issue.created", "changes": [{"field": "assignees", "new": "ann"}]}
    assert describe(QueuedNotice(1, AT, None, created), names) == ["Rhythm created the issue"]


def test_compose_threads_per_issue_and_escapes_html() -> None:
    retitled = {"field": "title", "old": "a", "new": "<b>x</b>"}
    notice = QueuedNotice(7, AT, "bob", {"event": "issue.updated", "changes": [retitled]})
    mail = Mail(
        to="ann@example.com", sender="Rhythm <rhythm@example.org>", issue_id="i1",
        issue_key="WEB-1", issue_title="<b>x</b>\nsecond line", org_slug="acme",
        project_key="WEB", link="https://r.example/i", unsubscribe="https://r.example/u",
        notices=[notice], names={"bob": "Bob"}, recipient_id="ann",
    )  # fmt: skip
    message = compose(mail)
    assert message["Subject"] == "[WEB-1] <b>x</b> second line"
    assert message["Message-ID"] == "<n7.i1.ann@example.org>"  # the same on a resend
    assert message["References"] == "<issue.i1@example.org>"
    assert message["Auto-Submitted"] == "auto-generated"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "&lt;b&gt;x&lt;/b&gt;" in str(html.get_content())
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None and "Bob changed title: a → <b>x</b>" in str(plain.get_content())


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.port, plain.implicit_tls, plain.start_tls) == (587, False, None)
    tls = parse_smtp_url("smtps://bot%40example.com:p%3Ass@mail.example.com")
    assert (tls.port, tls.implicit_tls, tls.username, tls.password) == (
        465, True, "bot@example.com", "p:ss")  # fmt: skip
    assert "p:ss" not in repr(tls) and "p:ss" not in tls.describe()
    assert parse_smtp_url("smtp://h:2525?starttls=required").start_tls is True
    assert parse_smtp_url("smtp://h?starttls=off").start_tls is False
    for bad in ("http://h", "smtp://", "smtp://h?starttls=maybe"):
        with pytest.raises(ValueError):
            parse_smtp_url(bad)


def test_notification_settings(tmp_path: Path) -> None:
    assert not make_settings(tmp_path).notifications_on
    on = make_settings(tmp_path, smtp_url="smtp://h", mail_from="r@example.com",
                       public_url="https://r.example.com/")  # fmt: skip
    assert on.notifications_on and on.base_url == "https://r.example.com"
    assert make_settings(tmp_path, port=9000).base_url == "http://127.0.0.1:9000"
    with pytest.raises(ValidationError):
        make_settings(tmp_path, smtp_url="mailto:x@example.com")
    with pytest.raises(ValidationError):
        make_settings(tmp_path, public_url="ftp://example.com")


def test_link_tokens_are_signed_per_purpose() -> None:
    codec = TokenCodec("s" * 40)
    token = codec.sign("unsubscribe", "user-1")
    assert codec.verify_signed("unsubscribe", token) == "user-1"
    assert codec.verify_signed("other", token) is None
    assert codec.verify_signed("unsubscribe", "user-2" + token[6:]) is None
    assert codec.verify_signed("unsubscribe", "garbage") is None
    assert TokenCodec("t" * 40).verify_signed("unsubscribe", token) is None


async def test_the_mailer_logs_in_and_delivers_to_a_real_smtp_server() -> None:
    """aiosmtplib against aiosmtpd on 127.0.0.1 with AUTH (plain TCP here: the test
    server allows auth without TLS; production should use smtps or starttls=required)."""
    import asyncio
    from email.message import EmailMessage

    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    from tests.notify_world import Inbox
    from tracker.outbound.mail import Mailer, MailRefused

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: object, session: object, envelope: object, mechanism: str,
                      data: object) -> AuthResult:  # fmt: skip
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3:cret")

    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, authenticator=authenticator, auth_require_tls=False),
        "127.0.0.1", 0,
    )  # fmt: skip
    port = server.sockets[0].getsockname()[1]
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "r@example.com", "a@example.com", "Hi"
        message.set_content("hello")
        url = f"smtp://bot%40example.com:s3%3Acret@127.0.0.1:{port}"
        await Mailer(parse_smtp_url(url)).send(message)
        assert logins == [(b"bot@example.com", b"s3:cret")]
        assert [m["Subject"] for m in inbox.messages] == ["Hi"]
        wrong = parse_smtp_url(f"smtp://bot:nope@127.0.0.1:{port}")
        with pytest.raises(Exception) as refused:
            await Mailer(wrong).send(message)
        assert not isinstance(refused.value, MailRefused)  # kept and retried, never dropped
        assert len(inbox.messages) == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_a_refused_recipient_is_a_mail_refused() -> None:
    """A 550 at RCPT is final for that message (the sender drops it); nothing delivered."""
    import asyncio
    from email.message import EmailMessage

    from aiosmtpd.smtp import SMTP

    from tests.notify_world import Inbox
    from tracker.outbound.mail import Mailer, MailRefused

    class Picky(Inbox):
        async def handle_RCPT(self, server: object, session: object, envelope: object,
                              address: str, options: list[str]) -> str:  # fmt: skip
            return "550 no such user"

    inbox = Picky()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(inbox), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "r@example.com", "x@example.com", "?"
        message.set_content("hello")
        with pytest.raises(MailRefused):
            await Mailer(parse_smtp_url(f"smtp://127.0.0.1:{port}")).send(message)
        assert inbox.messages == []
    finally:
        server.close()
        await server.wait_closed()
