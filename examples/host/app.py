"""An example host platform that embeds Rhythm under /tracker (docs/plugin-mode.md).

Run it:  python -m examples.host.app --data-dir ./host-data --port 8090
then sign in at http://127.0.0.1:8090/ (alice / wonderland, or bob / builder) and use
the tracker's API at /tracker/api/v1/... with the same session cookie.

What it shows:
- the host's own users and sign-in (a form, a server-side session, a cookie);
- an identity provider mapping the host's session to a Rhythm account, created on
  first sight with `tracker.plugin.ensure_user`;
- Rhythm's events received in process with `tracker.plugin.subscribe_events`
  (GET /events lists the latest), on the host's own event loop.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from tracker import plugin
from tracker.http.app import create_app
from tracker.services.accounts import Principal
from tracker.settings import Settings

COOKIE = "host_session"


@dataclass(frozen=True)
class HostUser:
    name: str
    email: str
    display_name: str
    salt: bytes
    password_hash: bytes

    @classmethod
    def make(cls, name: str, email: str, display_name: str, password: str) -> HostUser:
        salt = secrets.token_bytes(16)
        return cls(name, email, display_name, salt, _hash(password, salt))

    def check(self, password: str) -> bool:
        return hmac.compare_digest(_hash(password, self.salt), self.password_hash)


def _hash(password: str, salt: bytes) -> bytes:
    # the host's own scheme, whatever it is; Rhythm never sees these passwords
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100_000)


DEMO_USERS = (
    ("alice", "alice@host.example", "Alice", "wonderland"),
    ("bob", "bob@host.example", "Bob", "builder"),
)


class Host:
    """The host's state: its users, its sessions, and what it heard from Rhythm."""

    def __init__(self, users: list[HostUser]) -> None:
        self.users = {user.name: user for user in users}
        self.sessions: dict[str, str] = {}  # session id -> host user name
        self.rhythm_ids: dict[str, str] = {}  # host user name -> Rhythm user id
        self.events: deque[dict[str, Any]] = deque(maxlen=100)
        self.rhythm: web.Application | None = None
        self.subscription: plugin.Subscription | None = None

    def user_of(self, request: web.Request) -> HostUser | None:
        name = self.sessions.get(request.cookies.get(COOKIE, ""))
        return None if name is None else self.users.get(name)

    async def identity(self, request: web.Request) -> Principal | None:
        """Rhythm's identity provider: the signed-in host user's Rhythm account."""
        user = self.user_of(request)
        if user is None or self.rhythm is None:
            return None
        if user.name not in self.rhythm_ids:  # first sight: create the Rhythm account
            account = await plugin.ensure_user(self.rhythm, user.email, user.display_name)
            self.rhythm_ids[user.name] = account.id
        return Principal(self.rhythm_ids[user.name])

    async def on_event(self, org_id: str, event: plugin.Event) -> None:
        """Rhythm's events, in process, in commit order (a real host might notify people)."""
        self.events.append({"org_id": org_id, **event.data})


def build_host(settings: Settings, users: list[HostUser] | None = None) -> web.Application:
    """The host app with Rhythm mounted under /tracker/."""
    host = Host(users if users is not None else [HostUser.make(*u) for u in DEMO_USERS])
    app = web.Application()
    app[HOST] = host
    app.router.add_get("/", home)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/events", events)
    rhythm = create_app(settings, identity=host.identity)
    host.subscription = plugin.subscribe_events(rhythm, host.on_event)
    host.rhythm = rhythm
    app.add_subapp("/tracker/", rhythm)
    return app


HOST = web.AppKey("host", Host)


async def home(request: web.Request) -> web.Response:
    user = request.app[HOST].user_of(request)
    if user is None:
        return web.Response(text=LOGIN_PAGE, content_type="text/html")
    return web.Response(
        text=f"Signed in as {user.display_name}. The tracker's API: /tracker/api/v1/docs\n"
    )


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    host = request.app[HOST]
    user = host.users.get(str(form.get("name", "")))
    if user is None or not user.check(str(form.get("password", ""))):
        raise web.HTTPUnauthorized(text="unknown user or wrong password")
    session = secrets.token_urlsafe(32)
    host.sessions[session] = user.name
    response = web.HTTPSeeOther("/")
    # Strict: no cross-site request carries the cookie, so Rhythm's API is CSRF-safe here
    response.set_cookie(COOKIE, session, httponly=True, samesite="Strict")
    raise response


async def logout(request: web.Request) -> web.Response:
    request.app[HOST].sessions.pop(request.cookies.get(COOKIE, ""), None)
    response = web.HTTPSeeOther("/")
    response.del_cookie(COOKIE)
    raise response


async def events(request: web.Request) -> web.Response:
    if request.app[HOST].user_of(request) is None:
        raise web.HTTPUnauthorized()
    return web.json_response(list(request.app[HOST].events))


LOGIN_PAGE = """<!doctype html><title>Host</title>
<form method="post" action="/login">
<input name="name" placeholder="alice"> <input name="password" type="password">
<button>Sign in</button></form>"""


def main() -> None:
    parser = argparse.ArgumentParser(description="An example host embedding Rhythm.")
    parser.add_argument("--data-dir", type=Path, default=Path("host-data"))
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    settings = Settings.from_env(data_dir=args.data_dir)
    web.run_app(build_host(settings), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
