"""`rhythm watch ORG[/PROJECT]`: print a server's events as they arrive (SPEC §7).

Unlike the other commands this one talks to a running server (`--url`, with an
access token from `--token` or $RHYTHM_TOKEN), because events exist only where
the writes happen. It remembers the last seq it printed and, when the socket
drops (network, server restart, 4008 for a slow reader), reconnects with
`since` = that seq, so nothing is missed or printed twice.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

import typer

from cli.context import JsonOption, fail

#: Close codes after which reconnecting cannot help (SPEC §7).
FATAL = {4401: "not authenticated", 4403: "refused", 4404: "organization not found"}
MAX_BACKOFF = 30.0


class WatchFailed(Exception):
    """The server refused for good (bad token, unknown org or project)."""


def table_line(event: dict[str, Any]) -> str:
    """One aligned line per event: seq, event, issue, title, actor, changed fields."""
    issue = event.get("issue") or {}
    key = issue.get("key") or event.get("project", "")
    actor = (event.get("actor") or {}).get("display_name") or event.get("origin", "")
    changed = ", ".join(
        f"{c['field']}={_short(c['new'])}" for c in event.get("changes", []) if "field" in c
    )
    title = _short(issue.get("title") or "", 40)
    return f"{event['seq']:>8}  {event['event']:<20} {key:<10} {title:<40} {actor:<20} {changed}"


def _short(value: Any, width: int = 30) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


async def watch_events(
    url: str,
    token: str,
    org: str,
    project: str | None,
    emit: Callable[[dict[str, Any]], None],
    *,
    since: int | None = None,
    count: int | None = None,
    note: Callable[[str], None] = lambda text: None,
) -> int:
    """Follow the org's socket, reconnecting with `since`; returns the events printed."""
    import aiohttp

    target = url.rstrip("/") + f"/api/v1/orgs/{org}/ws"
    headers = {"Authorization": f"Bearer {token}"}
    label = project or "*"
    last, printed, backoff = since, 0, 0.5
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.ws_connect(target, headers=headers) as ws:
                    backoff = 0.5
                    await ws.send_json(_subscribe(label, last))
                    async for msg in ws:
                        if msg.type is not aiohttp.WSMsgType.TEXT:
                            continue
                        frame = json.loads(msg.data)
                        kind = frame.get("type")
                        if kind == "event" and (last is None or frame["seq"] > last):
                            emit(frame)
                            last, printed = frame["seq"], printed + 1
                            if count is not None and printed >= count:
                                return printed
                        elif kind == "subscribed" and last is None:
                            last = frame["head"]
                        elif kind == "resync":
                            note(f"resync ({frame.get('reason')}): continuing from the head")
                            last = None
                            await ws.send_json(_subscribe(label, None))
                        elif kind == "unsubscribed":
                            raise WatchFailed(f"unsubscribed from {label}: {frame.get('reason')}")
                        elif kind == "error" and frame.get("code") == "not_found":
                            raise WatchFailed(frame.get("detail", "not found"))
                    code = ws.close_code
                    if code in FATAL:
                        raise WatchFailed(f"closed {code}: {FATAL[code]}")
                    note(f"connection closed ({code}); reconnecting since {last}")
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                note(f"cannot reach {url} ({exc.__class__.__name__}); retrying in {backoff:.0f}s")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)


def _subscribe(label: str, since: int | None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "subscribe", "project": label}
    if since is not None:
        frame["since"] = since
    return frame


def watch(
    target: str = typer.Argument(..., metavar="ORG[/PROJECT]", help="Org slug, or slug/KEY."),
    url: str = typer.Option(
        "http://127.0.0.1:8080", "--url", envvar="RHYTHM_URL", help="Server base URL."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="RHYTHM_TOKEN", help="Access token (default $RHYTHM_TOKEN)."
    ),
    since: int | None = typer.Option(None, "--since", min=0, help="Replay events after this seq."),
    count: int | None = typer.Option(None, "--count", min=1, help="Exit after N events."),
    as_json: bool = JsonOption,
) -> None:
    """Print events as they arrive (one line each, or JSON lines), reconnecting with since."""
    if not token:
        fail("an access token is needed: --token or $RHYTHM_TOKEN")
    org, _, project = target.partition("/")
    if not org or (project == "" and target.endswith("/")):
        fail("target is ORG or ORG/PROJECT")
    out: TextIO = sys.stdout

    def emit(event: dict[str, Any]) -> None:
        data = {k: v for k, v in event.items() if k != "type"}
        line = json.dumps(data, ensure_ascii=False) if as_json else table_line(event)
        out.write(line + "\n")
        out.flush()

    def note(text: str) -> None:
        typer.echo(text, err=True)

    try:
        asyncio.run(watch_events(url, token, org, project or None, emit, since=since,
                                 count=count, note=note))  # fmt: skip
    except WatchFailed as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
