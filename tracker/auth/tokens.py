"""Access tokens (short-lived HS256 JWTs), opaque refresh tokens, and the signing secret.

Every PyJWT pitfall listed in docs/reliability.md §2.1 is closed here, in one
place: one pinned algorithm, required claims, audience and issuer always
checked, minimum key length enforced, and one undifferentiated 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.errors import DataDirError, Unauthorized

if TYPE_CHECKING:
    import jwt

MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least as long as the hash
SECRET_FILE_NAME = ".jwt_secret"
_ALGORITHM = "HS256"
_ACCESS_TYPE = "access"
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss", "jti"]
_INVALID = "invalid or expired token"
# PyJWT needs ~90 us per decode on a 2-core box (its per-character base64 check
# and key preparation); a client repeats one token for 15 minutes, so remember
# tokens that passed every check. Only valid tokens get in, so garbage cannot
# flood it; ~4096 x 0.5 KB = 2 MB at most.
_VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says; roles are looked up per request, not read from here."""

    user_id: str
    token_version: int
    jti: str
    expires_at: int  # Unix seconds


class TokenCodec:
    """Issues and verifies access tokens; any decoding failure is the same Unauthorized."""

    def __init__(
        self,
        secret: str,
        *,
        issuer: str = "rhythm",
        audience: str = "rhythm-api",
        access_ttl_seconds: int = 900,
        leeway_seconds: int = 30,
    ) -> None:
        _require_secret_length(secret, source="signing secret")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl = access_ttl_seconds
        self._leeway = leeway_seconds
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    @cached_property
    def _jwt(self) -> jwt.PyJWT:
        """A private instance so the key-length rule also applies when encoding; PyJWT is
        imported on first use (commands that never sign or verify start faster)."""
        import jwt

        return jwt.PyJWT(options={"enforce_minimum_key_length": True})

    def __repr__(self) -> str:
        return f"TokenCodec(issuer={self._issuer!r}, audience={self._audience!r})"  # no secret

    def sign(self, purpose: str, subject: str) -> str:
        """`subject.mac`: a link token that proves the server made it for this purpose
        (e.g. one-click unsubscribe in emails); no expiry, nothing stored."""
        return f"{subject}.{self._mac(purpose, subject)}"

    def verify_signed(self, purpose: str, token: str) -> str | None:
        """The subject of a token made by `sign` for `purpose`; None when forged or garbled."""
        subject, _, mac = token.rpartition(".")
        expected = self._mac(purpose, subject).encode() if subject else b""
        if not subject or not hmac.compare_digest(mac.encode(), expected):
            return None
        return subject

    def _mac(self, purpose: str, subject: str) -> str:
        digest = hmac.new(
            self._secret.encode(), f"rhythm-link:{purpose}:{subject}".encode(), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    def issue_access(self, user_id: str, token_version: int) -> tuple[str, int]:
        """A signed access token for one user and its `expires_in` in seconds."""
        now = int(time.time())
        claims = {
            "sub": user_id,
            "iat": now,
            "exp": now + self._ttl,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": uuid.uuid4().hex,
            "tv": token_version,
            "typ": _ACCESS_TYPE,
        }
        return self._jwt.encode(claims, self._secret, algorithm=_ALGORITHM), self._ttl

    def decode_access(self, token: str) -> AccessClaims:
        """Verify signature, algorithm, claims and type; never say which check failed."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode_uncached(token)
            self._remember(token, claims)
        elif claims.expires_at + self._leeway <= time.time():
            # Same rule as PyJWT's exp check: exp <= now - leeway is expired.
            self._verified.pop(token, None)
            raise Unauthorized(_INVALID)
        return claims

    def _decode_uncached(self, token: str) -> AccessClaims:
        import jwt

        try:
            payload = self._jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError:
            raise Unauthorized(_INVALID) from None
        return _access_claims(payload)

    def _remember(self, token: str, claims: AccessClaims) -> None:
        """Bounded, oldest-first eviction."""
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        self._verified[token] = claims


def _access_claims(payload: dict[str, Any]) -> AccessClaims:
    """Check the claims PyJWT does not know about (typ, tv) and their types."""
    sub, version, jti, exp = (payload.get(k) for k in ("sub", "tv", "jti", "exp"))
    if not (
        payload.get("typ") == _ACCESS_TYPE
        and isinstance(sub, str)
        and sub != ""
        and type(version) is int  # not bool, not float
        and isinstance(jti, str)
        and type(exp) is int
    ):
        raise Unauthorized(_INVALID)
    return AccessClaims(user_id=sub, token_version=version, jti=jti, expires_at=exp)


def new_refresh_token() -> str:
    """32 random bytes; opaque, so nothing in it can be forged or read."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """SHA-256 is enough for a 256-bit random secret; a slow hash would only cost CPU."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ensure_secret(data_dir: Path, configured: str | None) -> str:
    """The configured secret, or the one kept in the data dir (created once, mode 0600)."""
    if configured is not None:
        _require_secret_length(configured, source="configured JWT secret")
        return configured
    path = data_dir / SECRET_FILE_NAME
    try:
        if not path.exists():
            _create_secret_file(path)
        secret = _read_secret_file(path)
    except OSError as exc:
        raise DataDirError(f"cannot use JWT secret file {path}: {exc.strerror}") from exc
    _require_secret_length(secret, source=f"JWT secret in {path}")
    return secret


def _create_secret_file(path: Path) -> None:
    """Write a temp file, then hard-link it into place: link refuses to overwrite, and a
    racing reader never sees a half-written secret (O_EXCL on the final name could)."""
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48))  # 48 bytes -> 64 url-safe chars
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won the race; its secret is the one
    finally:
        tmp.unlink(missing_ok=True)


def _read_secret_file(path: Path) -> str:
    """Read the secret, first taking away group/world access if someone loosened it."""
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    return path.read_text(encoding="utf-8").strip()


def _require_secret_length(secret: str, *, source: str) -> None:
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise DataDirError(f"{source} is too short: need at least {MIN_SECRET_BYTES} bytes")
