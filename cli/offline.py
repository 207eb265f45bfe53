"""`rhythm login|clone|sync|pull|push`, and how issue commands act on a replica.

Where a command acts (docs/cli.md): `--data-dir` or $RHYTHM_DATA_DIR name a data
directory; otherwise the active replica ($RHYTHM_REPLICA, else the last `rhythm
clone`) if there is one; otherwise ./tenants. On a replica, reads run the
ordinary code on its view (a data directory), writes record mutations
(tracker.replica.commands), and commands that have no offline form say so.
Provisional keys (`WEB-~3fa9c`) are accepted anywhere a key is, and shown in
place of the view's reserved provisional numbers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import typer

from cli.context import EXIT_USER, JsonOption, exit_code_of, fail

if TYPE_CHECKING:
    from tracker.replica.engine import Replica

T = TypeVar("T")

#: Commands that read, and so run unchanged on a replica's view.
READS = frozenset({
    "issue list", "issue show", "issue search", "issue comments", "issue history",
    "issue links", "issue attachments", "board", "search list", "search run", "tag list",
    "stage list", "member list", "project list", "project show", "sprint list",
})  # fmt: skip
EXIT_REJECTED, EXIT_RESET = 2, 3


# --- picking the replica ---------------------------------------------------------------------


def replica_path(data_dir: Path | None) -> Path | None:
    """The replica a command acts on, or None (a data directory was named, or none active)."""
    if data_dir is not None or os.environ.get("RHYTHM_DATA_DIR"):
        return None
    from tracker.replica.paths import active_replica

    return active_replica()


def open_replica(path: Path) -> Replica:
    from tracker.replica.engine import Replica

    return guarded(lambda: Replica(path))


def guarded(work: Callable[[], T]) -> T:
    """Run replica work; its errors become one line and the documented exit code."""
    from tracker.errors import RhythmError
    from tracker.replica.errors import SyncError

    try:
        return work()
    except SyncError as error:
        fail(error.words(), EXIT_USER)
    except RhythmError as error:
        fail(error.detail, exit_code_of(error))
    except KeyboardInterrupt:
        fail("interrupted; nothing was lost (run it again)", 130)


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return guarded(lambda: asyncio.run(make()))


def run_async_raw(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`run_async` that lets the caller word a SyncError itself."""
    from tracker.errors import RhythmError
    from tracker.replica.errors import SyncError

    try:
        return asyncio.run(make())
    except SyncError:
        raise
    except RhythmError as error:
        fail(error.detail, exit_code_of(error))
    except KeyboardInterrupt:
        fail("interrupted; nothing was lost (run it again)", 130)


def view_for(data_dir: Path | None, command: str) -> Path | None:
    """The view a read command opens (None: not on a replica). Anything else is refused:
    it would write to a view that the next sync rebuilds, and be lost."""
    path = replica_path(data_dir)
    if path is None:
        return None
    if command not in READS:
        fail(f"`rhythm {command}` is online-only on a replica in v1 (offline: issue create,"
             " update, comment, comment-edit, attach and every read); use --data-dir, or set"
             " RHYTHM_REPLICA=none to act on ./tenants")  # fmt: skip
    install_key_display(path)
    return path / "view"


def defaults(path: Path) -> dict[str, str]:
    """org, project and person of a replica (what `rhythm clone` set)."""
    from tracker.replica.store import Journal

    journal = Journal(path / "replica.db")
    try:
        meta = journal.meta()
    finally:
        journal.close()
    found = {"org": meta.get("org", ""), "project": meta.get("project", ""),
             "as": meta.get("email", "")}  # fmt: skip
    return {k: v for k, v in found.items() if v}


# --- provisional keys in and out -----------------------------------------------------------

_PROVISIONAL_ARG = re.compile(r"\b([A-Za-z][A-Za-z0-9]{1,9}-~[0-9a-fA-F]{5})\b")
_RESERVED = re.compile(r"\b([A-Z][A-Z0-9]{1,9}-9\d{14})\b")


def rewrite_args(args: list[str]) -> list[str]:
    """`WEB-~3fa9c` in arguments -> the number the view knows it by (which the ordinary
    key parser accepts); left as typed when no replica knows it."""
    path = replica_path(None)
    if path is None or not any("-~" in a for a in args):
        return args
    from tracker.replica import commands

    replica = open_replica(path)
    try:

        def swap(match: re.Match[str]) -> str:
            try:
                return commands.issue_number(replica, match.group(1))
            except Exception:
                return match.group(1)

        return [_PROVISIONAL_ARG.sub(swap, a) for a in args]
    finally:
        replica.close()


class _KeyDisplay:
    """stdout that shows provisional keys for the view's reserved numbers."""

    def __init__(self, inner: TextIO, mapping: dict[str, str]) -> None:
        self.inner, self.mapping = inner, mapping

    def write(self, text: str) -> int:
        self.inner.write(_RESERVED.sub(lambda m: self.mapping.get(m.group(1), m.group(1)), text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def install_key_display(path: Path) -> None:
    from tracker.replica import commands

    replica = open_replica(path)
    try:
        mapping = commands.provisional_numbers(replica)
    finally:
        replica.close()
    if mapping and not isinstance(sys.stdout, _KeyDisplay):
        sys.stdout = _KeyDisplay(sys.stdout, mapping)


# --- offline writes (called by cli/issues.py on a replica) ---------------------------------


def create_issue(path: Path, project: str | None, data: dict[str, Any], fields: dict[str, str],
                 assignees: list[str] | None, sprint: str | None, quiet: bool) -> None:  # fmt: skip
    from tracker.replica import commands

    replica = open_replica(path)
    try:
        key = project or defaults(path).get("project")
        if not key:
            fail("no project: pass --project KEY (the replica holds several)")
        made = guarded(lambda: commands.create_issue(replica, key, data, fields, assignees, sprint))
    finally:
        replica.close()
    typer.echo(
        made if quiet else f"created {made}: {data['title']} (offline; `rhythm sync` sends it)"
    )


def update_issue(path: Path, key: str, data: dict[str, Any], fields: dict[str, str],
                 assignees: list[str] | None, sprint: str | None) -> None:  # fmt: skip
    from tracker.replica import commands

    install_key_display(path)  # `key` may be a provisional key's reserved number
    replica = open_replica(path)
    try:
        done = guarded(lambda: commands.update_issue(replica, key, data, fields, assignees, sprint))
    finally:
        replica.close()
    if not done:
        typer.echo(f"{key}: nothing to change")
    for label in done:
        typer.echo(f"recorded: {label} (offline; `rhythm sync` sends it)")


def comment(path: Path, key: str, body: str) -> None:
    from tracker.replica import commands

    install_key_display(path)  # `key` may be a provisional key's reserved number
    replica = open_replica(path)
    try:
        made = guarded(lambda: commands.comment(replica, key, body))
    finally:
        replica.close()
    typer.echo(f"commented on {key} ({made}; offline, `rhythm sync` sends it)")


def edit_comment(path: Path, key: str, comment_id: str, body: str) -> None:
    from tracker.replica import commands

    install_key_display(path)  # `key` may be a provisional key's reserved number
    replica = open_replica(path)
    try:
        done = guarded(lambda: commands.edit_comment(replica, key, comment_id, body))
    finally:
        replica.close()
    if done is None:
        typer.echo(f"{key}: comment {comment_id}: nothing to change")
    else:
        typer.echo(f"recorded: {done} (offline; `rhythm sync` sends it)")


def download_attachments(path: Path, files: list[tuple[str, str, str]], folder: Path) -> None:
    """A replica keeps attachment metadata only; `--download` fetches the bytes now."""
    from tracker.replica.client import Credentials, SyncClient

    replica = open_replica(path)
    try:
        url, org = replica.url, replica.org
    finally:
        replica.close()
    credentials = Credentials.load(url)
    if credentials is None:
        fail(f"not logged in to {url}: run `rhythm login {url}`")

    async def fetch() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        async with SyncClient(credentials, org) as client:
            for where, attachment_id, name in files:
                await client.download(where, folder / f"{attachment_id[-8:]}-{name}")

    run_async(fetch)


def attach(path: Path, key: str, files: list[Path], as_json: bool) -> None:
    """Offline attach: each file copied into the replica's outbox until `rhythm sync`."""
    from tracker.replica import uploads

    replica = open_replica(path)
    try:
        queued = guarded(lambda: uploads.queue(replica, key, files))
    finally:
        replica.close()
    if as_json:
        sys.stdout.write(json.dumps({"pending": [q.as_dict() for q in queued]}, indent=2) + "\n")
        return
    for item in queued:
        typer.echo(f"queued {item.filename} ({item.size} bytes) for {key}"
                   " (offline; `rhythm sync` uploads it)")  # fmt: skip


def show_attachments_with_pending(path: Path, key: str, items: list[Any], as_json: bool) -> None:
    """An issue's attachments on a replica: the server's, then those waiting to upload."""
    from cli.context import print_table
    from tracker.replica import uploads

    replica = open_replica(path)
    try:
        waiting = uploads.for_key(replica, key)
    finally:
        replica.close()
    if as_json:
        body = {"items": [i.model_dump(mode="json") for i in items],
                "pending": [w.as_dict() for w in waiting]}  # fmt: skip
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    rows = [i.model_dump() for i in items] + [
        {"id": w.id, "filename": w.filename, "size": w.size,
         "content_type": "refused (rhythm sync --rejected)" if w.problem else "pending upload"}
        for w in waiting
    ]  # fmt: skip
    print_table(rows, ["id", "filename", "size", "content_type"])


# --- login, clone, sync, pull, push ---------------------------------------------------------


def login(
    url: str = typer.Argument(..., help="The server, e.g. https://tracker.example.com"),
    email: str | None = typer.Option(None, "--email", help="Your email (asked if not given)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
) -> None:
    """Log in to a server; stores a refresh token (0600), never the password."""
    from tracker.replica.client import SyncClient, normalize_url

    server = normalize_url(url)
    who = email or typer.prompt("email")
    secret = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("password", hide_input=True)
    )
    credentials = run_async(lambda: SyncClient.login(server, who, secret))
    credentials.save()
    typer.echo(f"logged in to {server} as {credentials.email}")


def _credentials(url: str | None) -> Any:
    from tracker.replica.client import Credentials, normalize_url
    from tracker.replica.paths import home

    if url:
        found = Credentials.load(normalize_url(url))
    else:
        logins = sorted(home().glob("*/credentials.json"))
        if len(logins) > 1:
            fail("logged in to several servers: pass --server URL")
        found = None
        if logins:
            data = json.loads(logins[0].read_text(encoding="utf-8"))
            found = Credentials.load(data["url"])
    if found is None:
        fail("not logged in: run `rhythm login URL` first")
    return found


def clone(
    where: str = typer.Argument(..., metavar="ORG[/PROJECT]", help="e.g. acme or acme/WEB"),
    server: str | None = typer.Option(None, "--server", help="Server URL (default: your login)."),
) -> None:
    """Copy what you may see of an org (or one project) into a local replica."""
    from tracker.replica.engine import clone as do_clone

    org, _, project = where.strip().partition("/")
    credentials = _credentials(server)
    path, count = run_async(lambda: do_clone(credentials, org.lower(), project or None))
    scope = project.upper() if project else "every project you can read"
    typer.echo(f"cloned {org}/{scope}: {count} issues into {path}")
    typer.echo("issue commands now work here with no network; `rhythm sync` exchanges changes")


def _replica_or_fail() -> Path:
    path = replica_path(None)
    if path is None:
        fail("no replica: run `rhythm clone ORG[/PROJECT]` (or set RHYTHM_REPLICA)")
    return path


async def _exchange(replica: Replica, *, push: bool, pull: bool) -> Any:
    from tracker.replica.client import Credentials, SyncClient

    credentials = Credentials.load(replica.url)
    if credentials is None:
        fail(f"not logged in to {replica.url}: run `rhythm login {replica.url}`")
    async with SyncClient(credentials, replica.org) as client:
        return await replica.sync(client, push=push, pull=pull)


exchange = _exchange  # one sync, for other commands (cli/resolve.py, cli/scope.py)


def _report(report: Any, as_json: bool) -> None:
    from tracker.replica import words

    if as_json:
        sys.stdout.write(json.dumps(words.as_json(report), indent=2, default=str) + "\n")
    else:
        for line in words.lines(report):
            typer.echo(line)
    if report.lost_acked:
        raise typer.Exit(EXIT_RESET)
    if report.rejected or report.deferred:
        raise typer.Exit(EXIT_REJECTED)
    if report.stopped == "incomplete":
        raise typer.Exit(EXIT_USER)  # pending kept, as for a network error


def _run(push: bool, pull: bool, as_json: bool) -> None:
    replica = open_replica(_replica_or_fail())
    try:
        report = run_async(lambda: _exchange(replica, push=push, pull=pull))
    finally:
        replica.close()
    _report(report, as_json)


def sync(
    as_json: bool = JsonOption,
    rejected: bool = typer.Option(
        False, "--rejected", help="List what the server refused, with reasons and your text."
    ),
    drop: int | None = typer.Option(None, "--drop", help="With --rejected: forget entry N."),
    drop_upload: str | None = typer.Option(
        None, "--drop-upload", help="With --rejected: forget a refused upload (its id)."
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Keep syncing whenever the server says something changed."
    ),
) -> None:
    """Push your offline changes, then pull everyone else's (exit 2: some rejected)."""
    if drop_upload is not None:
        _drop_upload(drop_upload)
        return
    if rejected or drop is not None:
        _rejected(as_json, drop)
        return
    if watch:
        _watch(as_json)
        return
    _run(True, True, as_json)


def pull(as_json: bool = JsonOption) -> None:
    """Pull changes from the server (your pending changes stay on top)."""
    _run(False, True, as_json)


def push(as_json: bool = JsonOption) -> None:
    """Push pending changes only (the view follows at the next pull)."""
    _run(True, False, as_json)


def _rejected(as_json: bool, drop: int | None) -> None:
    from tracker.replica import drafts, words

    path = _replica_or_fail()
    replica = open_replica(path)
    try:
        if drop is not None:
            gone = replica.journal.drop_rejected(drop)
            if gone is None:
                fail(f"no rejected entry {drop}", 3)
            typer.echo(f"dropped {drop}: {gone['label'] or gone['name']}")
            return
        found = replica.journal.rejected()
        refused = _refused_uploads(replica)
        waiting = drafts.listed(replica.journal.conn)
    finally:
        replica.close()
    if as_json:
        body = {"items": found, "uploads": [u.as_dict() for u in refused],
                "drafts": [d.as_dict() for d in waiting]}  # fmt: skip
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    if not found and not refused:
        typer.echo("nothing rejected")
    for waiting_draft in waiting:
        typer.echo(f"draft (not rejected): {words.draft_line(waiting_draft)}")
    for item in found:
        problem = item["problem"]
        typer.echo(f"{item['n']}. {item['label'] or item['name']} — {problem.get('detail') or ''}"
                   f" [{problem.get('code', '')}] (written {item['at']})")  # fmt: skip
        for name in ("title", "body", "text", "description"):
            if item["args"].get(name):
                typer.echo(f"   {name}: {item['args'][name]}")
        draft = problem.get("draft") or {}
        if draft.get("text"):
            typer.echo(f"   your text:\n{draft['text']}")
    if found:
        typer.echo("retype what you still want; `rhythm sync --rejected --drop N` forgets one")
    for item in refused:
        problem = item.problem or {}
        typer.echo(f"upload {item.id}: {item.filename} ({item.size} bytes) for {item.issue_key}"
                   f" — {problem.get('detail') or ''} [{problem.get('code', '')}]")  # fmt: skip
        typer.echo(f"   the file is kept at {item.file(path)}")
    if refused:
        typer.echo("attach it again once allowed; `rhythm sync --drop-upload ID` forgets one")


def _refused_uploads(replica: Replica) -> list[Any]:
    from tracker.replica import uploads

    return uploads.listed(replica, refused=True)


def _drop_upload(upload_id: str) -> None:
    from tracker.replica import uploads

    replica = open_replica(_replica_or_fail())
    try:
        gone = uploads.drop(replica, upload_id)
    finally:
        replica.close()
    if gone is None:
        fail(f"no queued upload {upload_id}", 3)
    typer.echo(f"dropped upload {gone.id}: {gone.filename} for {gone.issue_key}")


def _watch(as_json: bool) -> None:
    """Sync, then wait for a WebSocket event past the cursor (a poke only: the data comes
    from pull, so a dropped socket loses nothing); reconnect with a pause; Ctrl-C stops."""
    from tracker.replica.watch import watch

    replica = open_replica(_replica_or_fail())
    try:
        run_async(lambda: watch(replica, lambda report: _print_quietly(report, as_json)))
    finally:
        replica.close()


def _print_quietly(report: Any, as_json: bool) -> None:
    from tracker.replica import words

    if as_json:
        sys.stdout.write(json.dumps(words.as_json(report), default=str) + "\n")
    else:
        for line in words.lines(report):
            typer.echo(line)
    sys.stdout.flush()


def status_lines() -> list[str]:
    """What `rhythm status` adds when a replica is active."""
    path = replica_path(None)
    if path is None:
        return []
    from tracker.replica import drafts

    replica = open_replica(path)
    try:
        meta = replica.journal.meta()
        pending = replica.journal.pending()
        rejected = replica.journal.rejected()
        waiting = drafts.listed(replica.journal.conn)
    finally:
        replica.close()
    from tracker.replica import words

    out = [f"replica: {meta.get('server')} {meta.get('org')}"
           + (f"/{meta['project']}" if meta.get("project") else "") + f" ({path})",
           f" pending: {len(pending)}" + "".join(f"\n   {m.id}. {m.label or m.name}"
                                                for m in pending),
           f"rejected: {len(rejected)}" + (" (rhythm sync --rejected)" if rejected else ""),
           f"last sync: {meta.get('last_sync') or 'never'}"]  # fmt: skip
    out += [f"  draft: {words.draft_line(d)}" + (" (resolution pending sync)" if d.resolving
                                                  else "") for d in waiting]  # fmt: skip
    warning = words.clock_warning(float(meta.get("clock_offset") or 0))
    return out + ([warning] if warning else [])
