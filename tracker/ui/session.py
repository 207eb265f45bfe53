"""Browser sessions: HttpOnly SameSite cookies holding the API's own tokens, and CSRF.

- `rhythm_session` holds the access token, `rhythm_rt` the refresh token (path `/`, both
  HttpOnly, SameSite=Lax, Secure over https). An expired access token is renewed with
  the refresh token (rotated, as the API's /auth/refresh does); concurrent requests
  carrying the same old refresh token share one rotation, so two tabs loading at once
  do not look like token reuse (which revokes the family).
- `rhythm_csrf` is a random token, HttpOnly too; pages repeat it in a hidden form field
  and in `hx-headers` on <body>, and every state-changing request must send it back
  (header `X-CSRF-Token` or field `csrf_token`). A cross-site form cannot read it.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

from tracker.domain.models.accounts import TokenPair
from tracker.errors import Forbidden, Unauthorized
from tracker.services import accounts
from tracker.services.accounts import Principal
from tracker.services.runtime import Core

ACCESS_COOKIE = "rhythm_session"
REFRESH_COOKIE = "rhythm_rt"
CSRF_COOKIE = "rhythm_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
#: How long a rotation's result is handed to other requests that sent the same old token.
SHARED_ROTATION_S = 30.0


@dataclass
class Rotations:
    """In-flight and recent refresh rotations, keyed by the old refresh token."""

    done: dict[str, tuple[float, asyncio.Future[TokenPair]]] = field(default_factory=dict)

    async def rotate(self, core: Core, token: str) -> TokenPair:
        now = time.monotonic()
        for old in [k for k, (at, _) in self.done.items() if now - at > SHARED_ROTATION_S]:
            del self.done[old]
        entry = self.done.get(token)
        if entry is None:
            future: asyncio.Future[TokenPair] = asyncio.ensure_future(accounts.refresh(core, token))
            self.done[token] = (now, future)
        else:
            future = entry[1]
        return await asyncio.shield(future)


def _cookie_args(request: web.Request) -> dict[str, object]:
    return {"httponly": True, "samesite": "Lax", "secure": request.secure, "path": "/"}


def set_tokens(request: web.Request, response: web.StreamResponse, pair: TokenPair,
               refresh_ttl: int) -> None:  # fmt: skip
    args = _cookie_args(request)
    response.set_cookie(ACCESS_COOKIE, pair.access_token, max_age=pair.expires_in, **args)  # type: ignore[arg-type]
    response.set_cookie(REFRESH_COOKIE, pair.refresh_token, max_age=refresh_ttl, **args)  # type: ignore[arg-type]


def clear_tokens(response: web.StreamResponse) -> None:
    response.del_cookie(ACCESS_COOKIE, path="/")
    response.del_cookie(REFRESH_COOKIE, path="/")


def csrf_of(request: web.Request) -> tuple[str, bool]:
    """The session's CSRF token and whether it is new (then the response must set it)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32:
        return token, False
    return secrets.token_urlsafe(32), True


def set_csrf(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, **_cookie_args(request))  # type: ignore[arg-type]


async def check_csrf(request: web.Request) -> None:
    """Refuse a state-changing request whose token does not match the cookie's (403)."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sent = str((await request.post()).get(CSRF_FIELD, ""))
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise Forbidden("the form expired or came from another site; reload the page and retry")
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise Forbidden("cross-site request refused")


async def principal_of(
    request: web.Request, core: Core, rotations: Rotations
) -> tuple[Principal | None, TokenPair | None]:
    """The signed-in person from the cookies, and new tokens if they had to be rotated."""
    access = request.cookies.get(ACCESS_COOKIE)
    if access:
        try:
            return await accounts.authenticate(core, access), None
        except Unauthorized:
            pass
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        return None, None
    try:
        pair = await rotations.rotate(core, refresh)
        return await accounts.authenticate(core, pair.access_token), pair
    except Unauthorized:
        return None, None
