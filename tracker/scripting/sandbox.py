"""Run one script job in a fresh hardened Lua 5.4 state (in the current process).

The worker process calls `run_job`; nothing else should, because a pattern
bomb runs inside C where no hook fires, and only killing the process stops it
(see tracker.scripting.pool). A job and its result are plain JSON-able dicts
(tracker.scripting.jobs). Lua 5.4 is imported explicitly: `from lupa import
LuaRuntime` picks the newest bundled Lua (5.5 in lupa 2.8), and LuaJIT skips
count hooks in compiled loops, so it must never run untrusted code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lupa import lua54

from tracker.scripting.bootstrap import BOOTSTRAP

#: Instructions between two budget checks. In Lua 5.4 any count hook sends every
#: instruction through the slow path, so a smaller value costs little more.
CHECK_EVERY = 1000
MAX_INSTRUCTIONS = 2_000_000_000
MAX_STRING = 8 * 1024 * 1024
MAX_RESULT_DEPTH = 12
BUDGET_MESSAGE = "script exceeded its CPU budget"
_LINE = re.compile(r"^script:(\d+): ?")

#: (kind, argument, limit) -> reply: answers ctx.project:issues / :issue
Reader = Callable[[str, str | None, int | None], Any]


def deny_all(obj: object, name: object, is_setting: bool) -> None:
    """lupa attribute filter: no Python attribute is reachable from Lua, ever."""
    raise AttributeError("attribute access denied")


def to_lua_data(value: Any) -> Any:
    """Python data -> what lupa turns into plain Lua values (the runtime uses bytes)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict):
        return {to_lua_data(k): to_lua_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_lua_data(v) for v in value]
    return value


def from_lua(value: Any, depth: int = 0) -> Any:
    """A plain Lua value (built by the bootstrap's `plain`) -> JSON-able Python."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > MAX_RESULT_DEPTH or lua54.lua_type(value) != "table":
        return None
    pairs = [(from_lua(k, depth + 1), from_lua(v, depth + 1)) for k, v in value.items()]
    if pairs and all(isinstance(k, int) for k, _ in pairs):
        ordered = sorted(pairs, key=lambda kv: kv[0])
        if [k for k, _ in ordered] == list(range(1, len(ordered) + 1)):
            return [v for _, v in ordered]
    return {str(k): v for k, v in pairs}


def split_line(message: str) -> tuple[int | None, str]:
    """'script:3: boom' -> (3, 'boom')."""
    match = _LINE.match(message)
    if match is None:
        return None, message
    return int(match.group(1)), message[match.end() :]


def run_job(job: dict[str, Any], reader: Reader) -> dict[str, Any]:
    """Compile (mode "compile") or run (mode "run") one script; never raises."""
    memory = int(job.get("memory_mb", 32)) * 1024 * 1024
    try:
        lua = lua54.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=deny_all,
            max_memory=memory,
        )
        host_read = _host_read(lua, reader)
        runner, state = lua.execute(BOOTSTRAP, host_read, MAX_INSTRUCTIONS, CHECK_EVERY, MAX_STRING)
        ok, error = runner(job["source"].encode("utf-8", "surrogatepass"), _lua_job(lua, job))
    except lua54.LuaMemoryError:
        return _result("memory", "script exceeded its memory budget")
    except lua54.LuaError as exc:
        text = exc.args[0] if exc.args else ""
        message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        if BUDGET_MESSAGE in message:
            return _result("timeout", BUDGET_MESSAGE)
        return _result("error", message.split("\nstack traceback:")[0])
    except MemoryError:
        return _result("memory", "script exceeded its memory budget")
    if not ok:
        message = from_lua(error) or "error"
        status = "memory" if "not enough memory" in message else "error"
        if BUDGET_MESSAGE in message:
            status = "timeout"
        return _result(status, message, state)
    return _result("ok", None, state)


def _lua_job(lua: Any, job: dict[str, Any]) -> Any:
    trigger = job.get("trigger") or {}
    fields = {
        "mode": job["mode"],
        "cpu_seconds": job.get("cpu_ms", 1000) / 1000,
        "kind": trigger.get("kind"),
        "key": trigger.get("event") or trigger.get("cron"),
        "now": job.get("now"),
        "event": job.get("event"),
        "issue": job.get("issue"),
        "project": job.get("project") or {},
    }
    return lua.table_from(to_lua_data(fields), recursive=True)


def _host_read(lua: Any, reader: Reader) -> Callable[..., tuple[bool, Any]]:
    """The read callback: plain converted tables out, plain-string errors, never raises."""

    def host_read(kind: Any, arg: Any, limit: Any) -> tuple[bool, Any]:
        try:
            reply = reader(
                kind.decode() if isinstance(kind, bytes) else str(kind),
                arg.decode("utf-8", "replace") if isinstance(arg, bytes) else None,
                limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
            )
        except Exception as exc:
            return False, str(exc).encode("utf-8", "replace")
        if reply is None:
            return True, None
        return True, lua.table_from(to_lua_data(reply), recursive=True)

    return host_read


def _result(status: str, error: str | None, state: Any = None) -> dict[str, Any]:
    line, message = split_line(error) if error else (None, None)
    result: dict[str, Any] = {"status": status, "error": message, "line": line}
    try:
        plain = from_lua(state) if state is not None else {}
    except Exception:
        plain = {}
    plain = plain if isinstance(plain, dict) else {}
    result["logs"] = [str(x) for x in _as_list(plain.get("logs"))]
    result["effects"] = _as_list(plain.get("effects"))
    result["triggers"] = _as_list(plain.get("triggers"))
    return result


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if not value else list(value.values()) if isinstance(value, dict) else []
