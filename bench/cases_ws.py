"""Real time (issue 13): WebSocket fan-out, catch-up and idle cost, beside plain aiohttp.

    python -m bench.cases_ws                       # all three parts
    python -m bench.cases_ws --parts fanout --clients 200 --rate 50 --seconds 10 --rounds 3

Both servers run in their own processes on 127.0.0.1; this process is the clients.

* fanout: C clients subscribed to one project while a writer PATCHes an issue's
  title R times a second (open loop: each PATCH is sent on schedule, not after the
  previous answer). Latency of a PATCH = from sending it to the moment the
  slowest client has its event frame (so it includes the PATCH's own commit);
  p50/p99 over PATCHes. Frames/s = frames received by all clients / (last frame
  - first send). Baseline: a plain aiohttp app whose POST handler sends the same
  frame (Rhythm's own event frame with the title swapped) to its C sockets with
  `send_str`, driven by the same open-loop writer. Rounds alternate sides.
  Goal: Rhythm >= 70 % of the baseline's frames/s and p99 <= 100 ms.
* catchup: N issues imported into the project (N `create` changes), then a fresh
  socket subscribes with `since` = the seq before them; time to the last event
  frame. Raw: a plain aiohttp app reading the same rows from the same tenant file
  with sqlite3 (`SELECT * … WHERE seq > ? ORDER BY seq`) and sending each row as
  JSON on one socket. Goal: Rhythm >= 50 % of raw (time ratio raw/Rhythm).
* idle: K sockets opened and subscribed, then left alone: RSS growth per
  connection (goal <= 50 KB) and the server's CPU seconds over an idle window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from bench.api import Api, register_and_login
from bench.servers import HOST, Server, free_port, rhythm_server

BASELINE_READY = "/ready"


# -- the plain aiohttp baseline (run as `python -m bench.cases_ws --serve-baseline PORT`) --


def baseline_app(db_path: str | None) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    sockets: set[web.WebSocketResponse] = set()

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def subscribe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        sockets.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            sockets.discard(ws)
        return ws

    async def broadcast(request: web.Request) -> web.Response:
        text = await request.text()
        for ws in tuple(sockets):
            await ws.send_str(text)
        return web.Response(text="sent")

    async def catchup(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        since = int(request.query["since"])
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        for row in conn.execute("SELECT * FROM changes WHERE seq > ? ORDER BY seq", (since,)):
            await ws.send_str(json.dumps(dict(row)))
        conn.close()
        await ws.send_str('{"done":true}')
        await ws.close()
        return ws

    app.router.add_get(BASELINE_READY, ready)
    app.router.add_get("/ws", subscribe)
    app.router.add_post("/broadcast", broadcast)
    app.router.add_get("/catchup", catchup)
    return app


def baseline_server(workdir: Path, db_path: str = "") -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "bench.cases_ws", "--serve-baseline", str(port)]
    if db_path:
        argv += ["--db", db_path]
    return Server("baseline", argv, BASELINE_READY, port, workdir / f"baseline-{port}.log")


# -- helpers -------------------------------------------------------------------------------


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class World:
    """One Rhythm server with a user, an org, project WEB and issue WEB-1."""

    def __init__(self, server: Server, http: aiohttp.ClientSession) -> None:
        self.server, self.http = server, http
        self.api = Api(http, server.url)
        self.token = ""
        self.org: dict[str, Any] = {}

    async def setup(self) -> None:
        self.token = await register_and_login(self.api)
        self.org = await self.api.call("POST", "/api/v1/orgs", json={"name": "Bench WS"},
                                       token=self.token, expect=201)  # fmt: skip
        project = {"name": "Web", "key": "WEB"}
        await self.api.call("POST", f"/api/v1/orgs/{self.org['slug']}/projects",
                            json=project, token=self.token, expect=201)  # fmt: skip
        await self.api.call("POST", self.path("/issues"), json={"title": "fan"},
                            token=self.token, expect=201)  # fmt: skip

    def path(self, tail: str) -> str:
        return f"/api/v1/orgs/{self.org['slug']}/projects/WEB{tail}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def socket(self, since: int | None = None) -> tuple[aiohttp.ClientWebSocketResponse, int]:
        ws = await self.http.ws_connect(
            f"{self.server.url}/api/v1/orgs/{self.org['slug']}/ws", headers=self.headers,
            max_msg_size=0,
        )  # fmt: skip
        hello = await ws.receive_json()
        frame: dict[str, Any] = {"type": "subscribe", "project": "WEB"}
        if since is not None:
            frame["since"] = since
        await ws.send_json(frame)
        subscribed = await ws.receive_json()
        assert subscribed["type"] == "subscribed", subscribed
        return ws, int(hello["head"])


# -- fan-out ----------------------------------------------------------------------------------


class Listener:
    """Reads one socket for the whole run (clients never stop reading) and records
    when each title's frame arrived into the current round's dict."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: dict[str, float] = {}
        self.close_code: int | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for msg in self.ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            arrived = time.perf_counter()
            text = msg.data
            # the title change's new value (the issue summary shows the title at render time)
            at = text.find(TITLE)
            if at >= 0:
                at = text.index(NEW, at) + len(NEW)
                self.seen[text[at : text.index('"', at)]] = arrived
        self.close_code = self.ws.close_code


TITLE = '"field":"title"'
NEW = '"new":"'


async def fanout_round(
    side: str, send: Any, listeners: list[Listener], rate: float, seconds: float, tag: str,
    pid: int,
) -> dict[str, Any]:  # fmt: skip
    cpu_before = cpu_seconds(pid)
    count = int(rate * seconds)
    titles = [f"{tag}-{i}" for i in range(count)]
    seen = [listener.seen for listener in listeners]
    sent: dict[str, float] = {}
    start = time.perf_counter()
    tasks = []
    for i, title in enumerate(titles):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[title] = time.perf_counter()
        tasks.append(asyncio.create_task(send(title)))
    await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and any(titles[-1] not in s for s in seen):
        await asyncio.sleep(0.05)
    frames = sum(1 for s in seen for t in titles if t in s)
    last = max((s[t] for s in seen for t in titles if t in s), default=start)
    slowest = [max(s.get(t, float("inf")) for s in seen) - sent[t] for t in titles]
    done = [x for x in slowest if x != float("inf")]
    closed = [x.close_code for x in listeners if x.task.done()]
    return {
        "server_cpu_ms_per_1k_frames": (cpu_seconds(pid) - cpu_before) * 1e6 / max(frames, 1),
        "frames_per_s": frames / (last - start),
        "p50_ms": pct(done, 0.5) * 1000,
        "p99_ms": pct(done, 0.99) * 1000,
        "missing": count * len(listeners) - frames,
        "closed": closed,
        "side": side,
    }


async def fanout(workdir: Path, clients: int, rate: float, seconds: float, rounds: int) -> None:
    os.environ["RHYTHM_WS_MAX_PER_USER"] = str(clients + 10)
    async with (
        rhythm_server(workdir) as rhythm,
        baseline_server(workdir) as plain,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        world = World(rhythm, http)
        await world.setup()
        rsockets = [(await world.socket())[0] for _ in range(clients)]
        psockets = [await http.ws_connect(plain.url + "/ws") for _ in range(clients)]
        patch_url = rhythm.url + world.path("/issues/1")
        template = await capture_frame(world, rsockets[0], patch_url)
        rlisteners = [Listener(ws) for ws in rsockets]
        plisteners = [Listener(ws) for ws in psockets]

        async def rhythm_send(title: str) -> None:
            async with http.patch(patch_url, json={"title": title},
                                  headers=world.headers) as resp:  # fmt: skip
                assert resp.status == 200, await resp.text()

        async def plain_send(title: str) -> None:
            body = template.replace("@TEMPLATE@", title)
            async with http.post(plain.url + "/broadcast", data=body) as resp:
                assert resp.status == 200

        results: list[dict[str, Any]] = []
        for r in range(rounds):
            assert plain.proc is not None and rhythm.proc is not None
            order = [("baseline", plain_send, plisteners, plain.proc.pid),
                     ("rhythm", rhythm_send, rlisteners, rhythm.proc.pid)]  # fmt: skip
            for side, send, socks, pid in order if r % 2 == 0 else order[::-1]:
                results.append(await fanout_round(side, send, socks, rate, seconds,
                                                  f"r{r}{side[0]}", pid))  # fmt: skip
                row = results[-1]
                print(f"  round {r + 1} {side:<8} {row['frames_per_s']:>9,.0f} frames/s  "
                      f"slowest-client p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms"
                      f"  server CPU {row['server_cpu_ms_per_1k_frames']:.0f} ms/1k frames"
                      f"  missing {row['missing']:.0f}  closed {len(row['closed'])}"
                      f" {sorted(set(row['closed']))}", flush=True)  # fmt: skip
        for ws in rsockets + psockets:
            await ws.close()
    by = {s: [r for r in results if r["side"] == s] for s in ("baseline", "rhythm")}
    keys = ("frames_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_1k_frames")
    med = {s: {k: statistics.median(r[k] for r in rows) for k in keys} for s, rows in by.items()}
    ratio = med["rhythm"]["frames_per_s"] / med["baseline"]["frames_per_s"]
    print(f"fan-out: {clients} clients, {rate:.0f} PATCH/s, {rounds} rounds x {seconds:.0f} s")
    for side in ("baseline", "rhythm"):
        m = med[side]
        print(f"  {side:<8} {m['frames_per_s']:>9,.0f} frames/s  p50 {m['p50_ms']:6.1f} ms  "
              f"p99 {m['p99_ms']:6.1f} ms  server CPU {m['server_cpu_ms_per_1k_frames']:.0f}"
              " ms per 1k frames (median of rounds)")  # fmt: skip
    verdict = "MET" if ratio >= 0.7 and med["rhythm"]["p99_ms"] <= 100 else "MISS"
    print(f"  rhythm/baseline frames/s = {ratio:.0%} (goal >= 70 %, p99 <= 100 ms): {verdict}")


async def capture_frame(world: World, ws: Any, patch_url: str) -> str:
    """One of Rhythm's own event frames, its title replaced by a placeholder."""
    async with world.http.patch(patch_url, json={"title": "@TEMPLATE@"},
                                headers=world.headers) as resp:  # fmt: skip
        assert resp.status == 200
    while True:
        msg = await ws.receive(timeout=10)
        if '"event"' in msg.data:
            return str(msg.data)


# -- catch-up -----------------------------------------------------------------------------------


async def catchup(workdir: Path, changes: int, rounds: int) -> None:
    os.environ["RHYTHM_WS_CATCHUP_MAX"] = str(changes * 2)
    async with rhythm_server(workdir) as rhythm, aiohttp.ClientSession() as http:
        world = World(rhythm, http)
        await world.setup()
        _, before = await world.socket()
        lines = "".join(json.dumps({"title": f"caught up {i}"}) + "\n" for i in range(changes))
        async with http.post(rhythm.url + world.path("/issues/import"), data=lines.encode(),
                             headers={**world.headers,
                                      "Content-Type": "application/x-ndjson"}) as resp:  # fmt: skip
            assert resp.status in (200, 201), await resp.text()
        head = (await world.socket())[1]
        db = str(workdir / "rhythm-data" / world.org["id"] / "tracker.db")
        async with baseline_server(workdir, db) as plain:
            times: dict[str, list[float]] = {"rhythm": [], "raw": []}
            for r in range(rounds):
                sides = ["raw", "rhythm"] if r % 2 == 0 else ["rhythm", "raw"]
                for side in sides:
                    started = time.perf_counter()
                    if side == "rhythm":
                        n = await rhythm_catchup(world, before, head)
                    else:
                        n = await raw_catchup(http, plain.url, before)
                    times[side].append(time.perf_counter() - started)
                    print(f"  round {r + 1} {side:<6} {times[side][-1] * 1000:8.1f} ms  "
                          f"({n} frames)", flush=True)  # fmt: skip
    rh, raw = statistics.median(times["rhythm"]), statistics.median(times["raw"])
    ratio = raw / rh
    print(f"catch-up of {head - before:,} changes ({rounds} rounds, medians):")
    print(f"  raw sqlite3 + one socket {raw * 1000:8.1f} ms")
    print(f"  rhythm                   {rh * 1000:8.1f} ms")
    verdict = "MET" if ratio >= 0.5 else "MISS"
    print(f"  ratio raw/rhythm time = {ratio:.0%} (goal >= 50 %): {verdict}")


async def rhythm_catchup(world: World, since: int, head: int) -> int:
    ws = await world.http.ws_connect(
        f"{world.server.url}/api/v1/orgs/{world.org['slug']}/ws", headers=world.headers
    )
    await ws.receive()  # hello
    await ws.send_json({"type": "subscribe", "project": "WEB", "since": since})
    n, seq = 0, 0
    while seq < head:
        data = json.loads((await ws.receive(timeout=60)).data)
        if data["type"] == "event":
            n, seq = n + 1, data["seq"]
    await ws.close()
    return n


async def raw_catchup(http: aiohttp.ClientSession, url: str, since: int) -> int:
    ws = await http.ws_connect(f"{url}/catchup?since={since}", max_msg_size=0)
    n = 0
    async for msg in ws:
        data = json.loads(msg.data)
        if data.get("done"):
            break
        n += 1
    await ws.close()
    return n


# -- idle -----------------------------------------------------------------------------------------


async def idle(workdir: Path, connections: int, window: float) -> None:
    os.environ["RHYTHM_WS_MAX_PER_USER"] = str(connections + 10)
    raise_fd_limit()
    async with rhythm_server(workdir) as rhythm, baseline_server(workdir) as plain:
        assert rhythm.proc is not None and plain.proc is not None
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            world = World(rhythm, http)
            await world.setup()
            sockets = [(await world.socket())[0] for _ in range(10)]  # warm every code path
            rows = []
            for label, pid, opener in (
                ("rhythm", rhythm.proc.pid, lambda: world.socket()),
                ("baseline", plain.proc.pid, lambda: http.ws_connect(plain.url + "/ws")),
            ):
                await asyncio.sleep(1)
                before = rss_kib(pid)
                opened = []
                for _ in range(connections):
                    got = await opener()
                    opened.append(got[0] if isinstance(got, tuple) else got)
                await asyncio.sleep(2)
                after = rss_kib(pid)
                cpu0 = cpu_seconds(pid)
                await asyncio.sleep(window)
                cpu = cpu_seconds(pid) - cpu0
                rows.append((label, (after - before) / connections, cpu))
                sockets += opened
            for ws in sockets:
                await ws.close()
    print(f"idle: {connections:,} sockets, idle window {window:.0f} s (heartbeat 30 s)")
    for label, per, cpu in rows:
        print(f"  {label:<8} RSS +{per:5.1f} KiB per connection, CPU {cpu:.2f} s over the window")
    verdict = "MET" if rows[0][1] <= 50 * 1000 / 1024 else "MISS"
    print(f"  goal <= 50 KB per connection: {verdict}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="fanout,catchup,idle")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--window", type=float, default=10)
    args = parser.parse_args()
    os.environ.setdefault("RHYTHM_ARGON2_TIME_COST", "1")
    os.environ.setdefault("RHYTHM_ARGON2_MEMORY_KIB", "8192")
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        for part in args.parts.split(","):
            workdir = Path(tmp) / part
            workdir.mkdir()
            if part == "fanout":
                await fanout(workdir, args.clients, args.rate, args.seconds, args.rounds)
            elif part == "catchup":
                await catchup(workdir, args.changes, args.rounds)
            elif part == "idle":
                await idle(workdir, args.idle, args.window)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-baseline":
        db = sys.argv[sys.argv.index("--db") + 1] if "--db" in sys.argv else None
        web.run_app(baseline_app(db), host=HOST, port=int(sys.argv[2]), print=None,
                    access_log=None)  # fmt: skip
    else:
        asyncio.run(main())
