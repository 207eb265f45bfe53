"""The sandbox against the real runner (worker processes): the escape matrix and budgets.

Every case is its own test. A case passes when the script is stopped with the
expected status inside its budget, reaches nothing of the host, and the pool
still runs the next job normally.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tracker.scripting.pool import WorkerPool

CPU_MS = 300
DEADLINE_S = 1.5


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    runner = WorkerPool(2)
    yield runner
    runner.close()


def reader(message: dict[str, Any]) -> Any:
    if message["read"] == "issue":
        return {"key": message["arg"], "title": "read from the host"}
    return [{"key": "WEB-1", "title": "one"}]


def run(pool: WorkerPool, source: str, mode: str = "compile") -> tuple[dict[str, Any], float]:
    job = {
        "mode": mode,
        "source": source,
        "trigger": {"kind": "manual"},
        "cpu_ms": CPU_MS,
        "memory_mb": 32,
        "project": {"key": "WEB"},
        "now": "2026-01-01T00:00:00Z",
    }
    started = time.monotonic()
    result = pool.run(job, reader, DEADLINE_S)
    return result, time.monotonic() - started


def still_works(pool: WorkerPool) -> None:
    result, _ = run(pool, 'on_manual(function(ctx) log("ok", 1 + 1) end)', mode="run")
    assert result["status"] == "ok" and result["logs"] == ["ok 2"], result


BLOCKED = {
    "os_execute": 'os.execute("touch /tmp/rhythm-escape")',
    "os_exit": "os.exit(3)",
    "os_getenv": 'return os.getenv("HOME") .. ""',
    "io_open": 'io.open("/etc/passwd"):read("a")',
    "io_popen": 'io.popen("id")',
    "load": 'load("return 1")()',
    "loadfile": 'loadfile("/etc/passwd")',
    "dofile": 'dofile("/etc/passwd")',
    "require": 'require("os")',
    "package_loadlib": 'package.loadlib("libc.so.6", "*")',
    "debug_getregistry": "debug.getregistry()",
    "debug_sethook": "debug.sethook() while true do end",
    "string_dump": 'load(string.dump(function() end), nil, "b")',
    "method_dump": 'local d = ("").dump; d(print)',
    "collectgarbage": 'collectgarbage("stop")',
    "python_eval": "python.eval(\"__import__('os').getpid()\")",
    "python_builtins": 'python.builtins.__import__("os")',
    "python_none_chain": "python.none.__class__.__base__.__subclasses__()",
    "string_metatable_poison": 'getmetatable("").__index = {upper = function() return "x" end}',
}


@pytest.mark.parametrize("source", BLOCKED.values(), ids=BLOCKED.keys())
def test_sandbox_blocks_host_access(pool: WorkerPool, source: str) -> None:
    result, _ = run(pool, source)
    assert result["status"] == "error", result
    assert result["line"] == 1
    assert not os.path.exists("/tmp/rhythm-escape")
    still_works(pool)


def test_sandbox_read_replies_are_plain_tables(pool: WorkerPool) -> None:
    source = """on_manual(function(ctx)
      local i = ctx.project:issue("WEB-9")
      log(type(i), i.title, tostring(getmetatable(i)), type(ctx.project:issues("x")[1]))
      log(tostring(rawget(i, "__class__")), type(python), type(ctx.now))
    end)"""
    result, _ = run(pool, source, mode="run")
    assert result["status"] == "ok", result
    assert result["logs"] == ["table read from the host issue table", "nil nil function"]


def test_sandbox_host_errors_arrive_as_plain_strings(pool: WorkerPool) -> None:
    def failing(message: dict[str, Any]) -> Any:
        raise ValueError("no such issue")

    source = """on_manual(function(ctx)
      local ok, e = pcall(function() local i = ctx.project:issue("WEB-1") return i end)
      log(type(e), e)
    end)"""
    job = {
        "mode": "run",
        "source": source,
        "trigger": {"kind": "manual"},
        "cpu_ms": CPU_MS,
        "project": {"key": "WEB"},
    }
    result = pool.run(job, failing, DEADLINE_S)
    assert result["status"] == "ok", result
    assert result["logs"] == ["string script:2: no such issue"]


CPU_BOMBS = {
    "while_true": "while true do end",
    "pcall_loop": "while true do pcall(function() while true do end end) end",
    "xpcall_handler_loop": (
        "while true do xpcall(function() while true do end end,"
        " function() while true do end end) end"
    ),
    "coroutine_loop": "coroutine.wrap(function() while true do end end)()",
    "coroutine_create_loop": (
        "local co = coroutine.create(function() while true do end end) coroutine.resume(co)"
        " while true do end"
    ),
    "close_loop": (
        "do local x <close> = setmetatable({}, {__close = function() while true do end end}) end"
    ),
    "tostring_metamethod_loop": (
        "tostring(setmetatable({}, {__tostring = function() while true do end end}))"
    ),
}


@pytest.mark.parametrize("source", CPU_BOMBS.values(), ids=CPU_BOMBS.keys())
def test_sandbox_stops_cpu_bombs_within_budget(pool: WorkerPool, source: str) -> None:
    result, took = run(pool, source)
    # stopped by the CPU budget inside Lua (CPU time: wall time varies on a busy box),
    # not by the wall-clock kill
    assert result == {**result, "status": "timeout", "error": "script exceeded its CPU budget"}
    assert took < DEADLINE_S
    still_works(pool)


def test_sandbox_kills_pattern_bomb_in_c_and_respawns(pool: WorkerPool) -> None:
    kills = pool.kills
    result, took = run(pool, 'local s = ("a"):rep(1e5) s:find(".-.-b")')
    assert result["status"] == "timeout", result
    assert DEADLINE_S <= took < DEADLINE_S + 0.5
    assert pool.kills == kills + 1
    still_works(pool)
    still_works(pool)


def test_sandbox_refuses_gc_finalizers(pool: WorkerPool) -> None:
    result, _ = run(pool, "setmetatable({}, {__gc = function() while true do end end})")
    assert result["status"] == "error" and "__gc" in result["error"]
    still_works(pool)


MEMORY_BOMBS = {
    "rep_huge": '("x"):rep(1e9)',
    "string_doubling": 'local s = "x" while true do s = s .. s end',
    "table_growth": "local t = {} local i = 0 while true do i = i + 1 t[i] = {i} end",
    "deep_recursion": "local function f() return f() + 1 end f()",
}


@pytest.mark.parametrize("source", MEMORY_BOMBS.values(), ids=MEMORY_BOMBS.keys())
def test_sandbox_stops_memory_bombs(pool: WorkerPool, source: str) -> None:
    result, took = run(pool, source)
    assert result["status"] in ("memory", "error"), result
    assert took < DEADLINE_S
    still_works(pool)


def test_sandbox_state_is_fresh_per_run(pool: WorkerPool) -> None:
    run(pool, 'string.upper = function() return "poisoned" end leaked = 1')
    result, _ = run(pool, 'on_manual(function() log(("a"):upper(), tostring(leaked)) end)', "run")
    assert result["logs"] == ["A nil"]


def test_sandbox_hostile_results_never_reach_the_host_raw(pool: WorkerPool) -> None:
    source = """on_manual(function(ctx)
      ctx.issue = nil
      log("\\xff\\xfe")
      local loop = setmetatable({}, {__index = function() while true do end end,
                                     __pairs = function() while true do end end})
      ctx.project:create_issue{title = "t", extra = loop}
    end)"""
    result, _ = run(pool, source, mode="run")
    assert result["status"] == "ok", result
    assert result["logs"] == ["\ufffd\ufffd"]
    assert result["effects"][0]["fields"]["title"] == "t"
    deep = "local t = {} local c = t for i = 1, 20 do c.x = {} c = c.x end"
    result, _ = run(pool, f"on_manual(function(ctx) {deep} ctx.project:create_issue(t) end)", "run")
    assert result["status"] == "error" and "nested too deep" in result["error"]
    big = "local t = {} for i = 1, 1e6 do t[i] = i end ctx.project:create_issue{list = t}"
    result, _ = run(pool, f"on_manual(function(ctx) {big} end)", "run")
    assert result["status"] == "error" and "too large" in result["error"]


def test_sandbox_reports_syntax_errors_with_line(pool: WorkerPool) -> None:
    result, _ = run(pool, "local a = 1\nlocal b = = 2")
    assert result == {**result, "status": "error", "line": 2}
    assert "unexpected symbol" in result["error"]


def test_sandbox_collects_triggers_with_lines(pool: WorkerPool) -> None:
    source = (
        'on_event("issue.created", function() end)\n'
        'on_schedule("0 9 * * 1", function() end)\non_manual(function() end)'
    )
    result, _ = run(pool, source)
    assert result["triggers"] == [
        {"kind": "event", "event": "issue.created", "line": 1},
        {"kind": "schedule", "cron": "0 9 * * 1", "line": 2},
        {"kind": "manual", "line": 3},
    ]


def test_every_lua_function_is_documented_in_the_readme() -> None:
    """The Lua API a script sees (globals and methods the bootstrap defines) is in the README."""
    import re
    from pathlib import Path

    from tracker.scripting.bootstrap import BOOTSTRAP

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    methods = re.findall(r"^function (Issue|Project)\.(\w+)", BOOTSTRAP, re.M)
    assert {name for _, name in methods} == {
        "update",
        "add_comment",
        "add_tag",
        "issues",
        "issue",
        "create_issue",
    }
    for owner, name in methods:
        spelled = f"issue:{name}" if owner == "Issue" else f"ctx.project:{name}"
        assert spelled in readme, spelled
    for name in ("on_event", "on_schedule", "on_manual", "log(", "ctx.now()", "ctx.event"):
        assert name in readme, name
