"""Drive load with wrk through a generated Lua script."""

from __future__ import annotations

import asyncio
import json
import tempfile

from bench.cases import SEQ, Request
from bench.load import Result

MARK = "BENCH_JSON "

# wrk counts non-2xx/3xx responses in errors.status; `done` prints one JSON line.
DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"p50_us":%.1f,"p99_us":%.1f,"errors":%d}\\n',
    MARK, summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
"""

# Per-request bodies only when the body asks for a counter: wrk otherwise
# pre-builds the request once, which is cheaper.
COUNTER = """
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, (body:gsub(SEQ, tostring(n))))
end
"""


def lua_str(data: str | bytes) -> str:
    """A Lua string literal holding exactly ``data``."""
    raw = data.encode() if isinstance(data, str) else data
    out = "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:03d}" for b in raw)
    return f'"{out}"'


def script(req: Request) -> str:
    """The Lua script that makes wrk send ``req`` and report p50/p99."""
    lines = [f"MARK = {lua_str(MARK)}", f"wrk.method = {lua_str(req.method)}"]
    lines += [f"wrk.headers[{lua_str(k)}] = {lua_str(v)}" for k, v in req.headers.items()]
    if req.body is not None:
        lines.append(f"body = {lua_str(req.body)}")
        lines.append(f"wrk.body = {lua_str(req.render_body(0) or b'')}")
        if SEQ.encode() in req.body:
            # "{seq}" has no Lua pattern magic characters, so gsub matches it literally.
            lines += [f"SEQ = {lua_str(SEQ)}", COUNTER]
    return "\n".join([*lines, DONE])


class WrkDriver:
    """Runs ``wrk --latency`` as a subprocess and parses the `done` hook's line."""

    def __init__(self, wrk: str, connections: int, threads: int) -> None:
        self.wrk, self.connections, self.threads = wrk, connections, threads
        self.name = f"wrk ({threads} thread{'s' * (threads > 1)})"

    async def run(self, base_url: str, req: Request, seconds: float) -> Result:
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
            lua.write(script(req))
            lua.flush()
            argv = [self.wrk, "-t", str(self.threads), "-c", str(self.connections)]
            argv += ["-d", f"{seconds:g}s", "--timeout", "10s", "-s", lua.name]
            out = await _run([*argv, base_url + req.path])
        return parse(out)


async def _run(argv: list[str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode:
        raise RuntimeError(f"wrk exited {proc.returncode}: {text[-500:]}")
    return text


def parse(output: str) -> Result:
    """The Result in wrk's output, from the line our `done` hook wrote."""
    for line in output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            return Result(
                requests=data["requests"],
                errors=data["errors"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1e3,
                p99_ms=data["p99_us"] / 1e3,
            )
    raise RuntimeError(f"no result line in wrk output: {output[-500:]}")
