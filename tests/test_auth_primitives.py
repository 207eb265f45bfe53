"""Auth primitives: argon2 off-loop with bounded admission, JWT rules, secret file, throttle."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import argon2
import jwt
import pytest

from tracker.auth.passwords import MIN_PASSWORD_LENGTH, PasswordHasher, password_problems
from tracker.auth.throttle import LoginThrottle
from tracker.auth.tokens import (
    AccessClaims,
    TokenCodec,
    ensure_secret,
    hash_refresh_token,
    new_refresh_token,
)
from tracker.errors import (
    BadRequest,
    DataDirError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)

SECRET = "s" * 64  # long enough for HS512 too, so that case fails on the algorithm only


@pytest.fixture
async def hasher() -> AsyncIterator[PasswordHasher]:
    h = PasswordHasher()
    yield h
    h.close()


# --- passwords ---------------------------------------------------------------


async def test_passwords_roundtrip(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await hasher.verify(stored, "correct horse battery") is True
    assert hasher.needs_rehash(stored) is False


async def test_passwords_wrong_password_and_bad_hash_are_false(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery")
    assert await hasher.verify(stored, "Correct horse battery") is False
    assert await hasher.verify("not-a-hash", "whatever") is False
    assert await hasher.verify("$argon2id$v=19$m=1,t=1,p=1$xx$yy", "whatever") is False


async def test_passwords_needs_rehash_for_other_parameters(hasher: PasswordHasher) -> None:
    old = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert hasher.needs_rehash(old) is True
    assert hasher.needs_rehash("garbage") is True


async def test_passwords_unknown_user_costs_a_real_verify(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse battery")
    assert await hasher.verify(None, "correct horse battery") is False  # builds the dummy

    async def median(call: Callable[[], Any]) -> float:
        samples = []
        for _ in range(7):
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    real = await median(lambda: hasher.verify(stored, "wrong password!"))
    dummy = await median(lambda: hasher.verify(None, "wrong password!"))
    assert 0.3 * real < dummy < 3 * real


async def test_passwords_saturation_answers_503_at_once() -> None:
    h = PasswordHasher(max_concurrency=1, max_waiting=1)
    try:
        results = await asyncio.gather(
            *(h.hash(f"password {i}") for i in range(10)), return_exceptions=True
        )
    finally:
        h.close()
    rejected = [r for r in results if isinstance(r, ServiceUnavailable)]
    hashed = [r for r in results if isinstance(r, str)]
    assert len(rejected) + len(hashed) == 10
    assert len(hashed) >= 2 and len(rejected) >= 1
    assert rejected[0].retry_after == 1
    assert rejected[0].detail == "password hashing is saturated"


async def test_passwords_admission_recovers_after_saturation() -> None:
    h = PasswordHasher(max_concurrency=1, max_waiting=0)
    try:
        await asyncio.gather(*(h.hash("password") for _ in range(3)), return_exceptions=True)
        assert (await h.hash("password")).startswith("$argon2id$")
    finally:
        h.close()


async def test_passwords_over_long_is_bad_request_without_hashing(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("argon2 must not run")

    monkeypatch.setattr(argon2.PasswordHasher, "hash", boom)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", boom)
    too_long = "é" * 513  # 1026 utf-8 bytes, only 513 characters
    with pytest.raises(BadRequest):
        await hasher.hash(too_long)
    with pytest.raises(BadRequest):
        await hasher.verify(None, too_long)
    with pytest.raises(BadRequest):
        await hasher.verify("$argon2id$whatever", "x" * 1025)


async def test_passwords_event_loop_keeps_ticking_while_hashing(hasher: PasswordHasher) -> None:
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(hasher.hash(f"password {i}") for i in range(4)))
    hashing = time.perf_counter() - started
    done.set()
    await task
    # Inline hashing would freeze the loop for the whole batch; off-loop, the loop
    # keeps ticking many times and no single gap comes close to the batch time.
    assert len(gaps) > 5
    assert max(gaps) < hashing / 2


async def test_passwords_close_stops_the_pool_threads() -> None:
    before = set(threading.enumerate())
    h = PasswordHasher()
    await asyncio.gather(h.hash("password one"), h.verify(None, "password two"))
    assert any(t.name.startswith("argon2") for t in set(threading.enumerate()) - before)
    h.close()
    assert [
        t.name for t in set(threading.enumerate()) - before if t.name.startswith("argon2")
    ] == []


def test_password_problems() -> None:
    assert password_problems("x" * MIN_PASSWORD_LENGTH) == []
    assert password_problems("short") == ["must be at least 8 characters"]
    assert password_problems("x" * 1025) == ["must be at most 1024 bytes"]
    assert password_problems("\ud800" * 8) == ["must be at most 1024 bytes"]


# --- tokens ------------------------------------------------------------------


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "u1",
        "iat": now,
        "exp": now + 600,
        "iss": "rhythm",
        "aud": "rhythm-api",
        "jti": "j1",
        "tv": 3,
        "typ": "access",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_tokens_roundtrip() -> None:
    codec = TokenCodec(SECRET)
    token, expires_in = codec.issue_access("user-1", 7)
    assert expires_in == 900
    decoded = codec.decode_access(token)
    assert isinstance(decoded, AccessClaims)
    assert (decoded.user_id, decoded.token_version) == ("user-1", 7)
    assert len(decoded.jti) == 32
    assert abs(decoded.expires_at - (time.time() + 900)) < 5
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert codec.issue_access("user-1", 7)[0] != token  # fresh jti each time


def test_tokens_issued_token_matches_hand_made_claims() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert TokenCodec(SECRET).decode_access(token).user_id == "u1"


def test_tokens_decode_is_cheap() -> None:
    codec = TokenCodec(SECRET)
    tokens = [codec.issue_access(f"u{i}", 1)[0] for i in range(200)]
    started = time.perf_counter()
    for token in tokens:
        codec.decode_access(token)
    cold = (time.perf_counter() - started) / len(tokens)
    started = time.perf_counter()
    for _ in range(5):
        for token in tokens:
            codec.decode_access(token)
    warm = (time.perf_counter() - started) / (5 * len(tokens))
    assert cold < 0.001  # ~0.08 ms measured; loose bound for a loaded CI box
    assert warm < 0.0001


def _forged(mutate: Callable[[str], str]) -> str:
    return mutate(jwt.encode(claims(), SECRET, algorithm="HS256"))


def _tampered(token: str) -> str:
    header, _payload, signature = token.split(".")
    return ".".join([header, b64(claims(sub="admin")), signature])


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "alg none": lambda: jwt.encode(claims(), None, algorithm="none"),
    "alg none, hand made": lambda: f"{b64({'alg': 'none'})}.{b64(claims())}.",
    "HS512 with same secret": lambda: jwt.encode(claims(), SECRET, algorithm="HS512"),
    "wrong signature": lambda: jwt.encode(claims(), "t" * 64, algorithm="HS256"),
    "tampered payload": lambda: _forged(_tampered),
    "truncated signature": lambda: _forged(lambda t: t[:-4]),
    "expired beyond leeway": lambda: jwt.encode(
        claims(iat=int(time.time()) - 1000, exp=int(time.time()) - 31), SECRET
    ),
    "missing exp": lambda: jwt.encode(claims(exp=None), SECRET),
    "missing iat": lambda: jwt.encode(claims(iat=None), SECRET),
    "missing jti": lambda: jwt.encode(claims(jti=None), SECRET),
    "missing sub": lambda: jwt.encode(claims(sub=None), SECRET),
    "missing aud": lambda: jwt.encode(claims(aud=None), SECRET),
    "missing iss": lambda: jwt.encode(claims(iss=None), SECRET),
    "missing tv": lambda: jwt.encode(claims(tv=None), SECRET),
    "missing typ": lambda: jwt.encode(claims(typ=None), SECRET),
    "wrong aud": lambda: jwt.encode(claims(aud="other-api"), SECRET),
    "wrong iss": lambda: jwt.encode(claims(iss="evil"), SECRET),
    "typ refresh": lambda: jwt.encode(claims(typ="refresh"), SECRET),
    "non-string sub": lambda: jwt.encode(claims(sub=123), SECRET),
    "empty sub": lambda: jwt.encode(claims(sub=""), SECRET),
    "bool tv": lambda: jwt.encode(claims(tv=True), SECRET),
    "string tv": lambda: jwt.encode(claims(tv="3"), SECRET),
    "iat far in future": lambda: jwt.encode(
        claims(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200), SECRET
    ),
    "empty": lambda: "",
    "one word": lambda: "garbage",
    "three dots": lambda: "a.b.c",
    "only dots": lambda: "...",
    "non-ascii": lambda: "ü.ö.ä",
    "json array payload": lambda: f"{b64({'alg': 'HS256'})}.{b64([1])}.sig",
    "huge": lambda: "A" * 100_000,
}


@pytest.mark.parametrize("make", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_tokens_rejected_with_one_message(make: Callable[[], str]) -> None:
    with pytest.raises(Unauthorized) as caught:
        TokenCodec(SECRET).decode_access(make())
    assert caught.value.detail == "invalid or expired token"
    assert caught.value.status == 401


def test_tokens_expiry_within_leeway_is_accepted() -> None:
    token = jwt.encode(claims(iat=int(time.time()) - 100, exp=int(time.time()) - 10), SECRET)
    assert TokenCodec(SECRET).decode_access(token).user_id == "u1"


def test_tokens_cached_token_still_expires() -> None:
    codec = TokenCodec(SECRET, access_ttl_seconds=1, leeway_seconds=0)
    token, _ = codec.issue_access("u1", 1)
    decoded = codec.decode_access(token)  # now cached
    time.sleep(max(0.0, decoded.expires_at - time.time()) + 0.02)
    with pytest.raises(Unauthorized):
        codec.decode_access(token)


def test_tokens_short_secret_refused() -> None:
    with pytest.raises(DataDirError, match="too short"):
        TokenCodec("x" * 31)
    assert "s" * 10 not in repr(TokenCodec(SECRET))


def test_refresh_tokens_are_opaque_and_hashed() -> None:
    token = new_refresh_token()
    assert len(token) >= 43 and token.count(".") == 0
    assert new_refresh_token() != token
    digest = hash_refresh_token(token)
    assert len(digest) == 64 and digest == hash_refresh_token(token)
    assert digest != hash_refresh_token(new_refresh_token())


# --- ensure_secret -----------------------------------------------------------


def test_secret_created_once_with_mode_0600(tmp_path: Path) -> None:
    secret = ensure_secret(tmp_path, None)
    path = tmp_path / ".jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret) == 64
    assert ensure_secret(tmp_path, None) == secret
    assert [p.name for p in tmp_path.iterdir()] == [".jwt_secret"]  # no temp files left
    TokenCodec(secret)  # long enough to sign with


def test_secret_differs_between_data_dirs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert ensure_secret(tmp_path / "a", None) != ensure_secret(tmp_path / "b", None)


def test_secret_file_permissions_tightened(tmp_path: Path) -> None:
    path = tmp_path / ".jwt_secret"
    path.write_text("k" * 40 + "\n")
    path.chmod(0o644)
    assert ensure_secret(tmp_path, None) == "k" * 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_secret_configured_wins_and_must_be_long(tmp_path: Path) -> None:
    assert ensure_secret(tmp_path, "c" * 32) == "c" * 32
    assert not (tmp_path / ".jwt_secret").exists()
    with pytest.raises(DataDirError, match="too short"):
        ensure_secret(tmp_path, "c" * 31)


def test_secret_file_too_short_refused(tmp_path: Path) -> None:
    (tmp_path / ".jwt_secret").write_text("short")
    with pytest.raises(DataDirError, match="too short"):
        ensure_secret(tmp_path, None)


def test_secret_missing_data_dir_is_a_data_dir_error(tmp_path: Path) -> None:
    with pytest.raises(DataDirError):
        ensure_secret(tmp_path / "missing", None)


# --- throttle ----------------------------------------------------------------


def test_throttle_fifth_failure_blocks_the_email() -> None:
    throttle = LoginThrottle()
    for _ in range(5):
        throttle.check("ann@example.com", "10.0.0.1")
        throttle.record_failure("ann@example.com")
    with pytest.raises(TooManyRequests) as caught:
        throttle.check("ann@example.com", "10.0.0.2")
    assert 899 <= caught.value.retry_after <= 900
    throttle.check("bob@example.com", "10.0.0.1")  # other emails unaffected


def test_throttle_success_clears_failures() -> None:
    throttle = LoginThrottle()
    for _ in range(4):
        throttle.record_failure("ann@example.com")
    throttle.record_success("ann@example.com")
    for _ in range(4):
        throttle.record_failure("ann@example.com")
    throttle.check("ann@example.com", "10.0.0.1")


def test_throttle_email_is_case_insensitive() -> None:
    throttle = LoginThrottle(max_failures_per_email=2)
    throttle.record_failure("Ann@Example.com")
    throttle.record_failure("ANN@EXAMPLE.COM")
    with pytest.raises(TooManyRequests):
        throttle.check("ann@example.com", "10.0.0.1")
    throttle.record_success("aNN@example.COM")
    throttle.check("ann@example.com", "10.0.0.1")


def test_throttle_address_limit() -> None:
    throttle = LoginThrottle(max_attempts_per_address=20, address_window_seconds=60)
    for i in range(20):
        throttle.check(f"user{i}@example.com", "10.0.0.9")
        throttle.record_attempt("10.0.0.9")
    with pytest.raises(TooManyRequests) as caught:
        throttle.check("someone@example.com", "10.0.0.9")
    assert 59 <= caught.value.retry_after <= 60
    throttle.check("someone@example.com", "10.0.0.10")


def test_throttle_window_expires() -> None:
    throttle = LoginThrottle(max_failures_per_email=2, email_window_seconds=0.2)
    throttle.record_failure("ann@example.com")
    throttle.record_failure("ann@example.com")
    with pytest.raises(TooManyRequests) as caught:
        throttle.check("ann@example.com", "10.0.0.1")
    assert caught.value.retry_after == 1  # 0.2 s rounds up to the 1 s minimum
    time.sleep(0.25)
    throttle.check("ann@example.com", "10.0.0.1")
    assert throttle.tracked_keys() == (0, 0)  # the expired key was dropped


def test_throttle_memory_is_bounded() -> None:
    throttle = LoginThrottle(max_keys=100, max_attempts_per_address=3)
    for i in range(1000):
        throttle.record_failure(f"user{i}@example.com")
        for _ in range(10):
            throttle.record_attempt(f"10.0.{i // 256}.{i % 256}")
    assert throttle.tracked_keys() == (100, 100)
    with pytest.raises(TooManyRequests):  # the newest keys survive eviction
        throttle.check("x@example.com", "10.0.3.231")


def test_throttle_stale_keys_pruned_on_write() -> None:
    throttle = LoginThrottle(email_window_seconds=0.1, address_window_seconds=0.1)
    for i in range(50):
        throttle.record_failure(f"user{i}@example.com")
        throttle.record_attempt(f"10.0.0.{i}")
    time.sleep(0.15)
    throttle.record_failure("late@example.com")
    throttle.record_attempt("10.0.1.1")
    assert throttle.tracked_keys() == (1, 1)
