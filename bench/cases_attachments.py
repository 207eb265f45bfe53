"""Attachments: 10 MB upload and download vs a plain aiohttp file handler; RSS under load.

    python -m bench.cases_attachments --rounds 5

Two servers, each in its own process: the baseline `file_stream` (plain aiohttp:
a multipart upload streamed to disk with SHA-256, fsync and rename; a download
through FileResponse) and the real Rhythm (`POST …/issues/1/attachments`, `GET
…/attachments/{id}`: authentication, access, quota, sniffing, the change log).
Rounds alternate sides with rotating order; each moves `--files` files of 10 MB
each way. Then 8 parallel 25 MB uploads to Rhythm while its RSS is sampled every
10 ms. Goals: throughput >= 70 % of the baseline; RSS grows by < 50 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.api import Api, register_and_login
from bench.baselines import baseline
from bench.servers import Server, baseline_server, rhythm_server

MB = 1024 * 1024


@baseline("file_stream")
def file_stream(db_path: Path) -> web.Application:
    """POST / (multipart, `file` parts) to disk; GET /{name} streams it back."""
    folder = db_path.parent / "baseline-files"
    folder.mkdir(exist_ok=True)

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        names = []
        while (part := await reader.next()) is not None:
            digest, spool = hashlib.sha256(), folder / f".spool-{os.urandom(6).hex()}"
            with spool.open("wb") as out:
                while chunk := await part.read_chunk(256 * 1024):  # type: ignore[union-attr]
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(os.fsync, out.fileno())
            name = digest.hexdigest()
            os.replace(spool, folder / name)
            names.append(name)
        return web.json_response({"items": names}, status=201)

    async def download(request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / request.match_info["name"], chunk_size=256 * 1024)

    app = web.Application()
    app.router.add_post("/", upload)
    app.router.add_get("/{name}", download)
    return app


def _form(content: bytes) -> aiohttp.FormData:
    import io

    data = aiohttp.FormData()
    data.add_field("file", io.BytesIO(content), filename="big.bin")
    return data


async def _rhythm_setup(session: aiohttp.ClientSession, server: Server) -> tuple[str, dict]:
    api = Api(session, server.url)
    token = await register_and_login(api)
    await api.call("POST", "/api/v1/orgs", json={"name": "B", "slug": "b"}, token=token, expect=201)
    await api.call("POST", "/api/v1/orgs/b/projects", json={"name": "W", "key": "WEB"},
                   token=token, expect=201)  # fmt: skip
    await api.call("POST", "/api/v1/orgs/b/projects/WEB/issues", json={"title": "files"},
                   token=token, expect=201)  # fmt: skip
    return server.url + "/api/v1/orgs/b/projects/WEB/issues/1/attachments", {
        "Authorization": f"Bearer {token}"
    }


async def _move(
    session: aiohttp.ClientSession, upload_url: str, headers: dict, files: list[bytes], base: str
) -> tuple[float, float]:
    """Upload then download every file; (upload MB/s, download MB/s)."""
    began, urls = time.perf_counter(), []
    for content in files:
        async with session.post(upload_url, data=_form(content), headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            item = (await resp.json())["items"][0]
            urls.append(base + item["url"] if isinstance(item, dict) else f"{base}/{item}")
    up = len(files) * 10 / (time.perf_counter() - began)
    began = time.perf_counter()
    for url in urls:
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            async for _ in resp.content.iter_chunked(256 * 1024):
                pass
    return up, len(files) * 10 / (time.perf_counter() - began)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main_async(rounds: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = [os.urandom(10 * MB) for _ in range(count)]
        async with (
            baseline_server("file_stream", work) as plain,
            rhythm_server(work) as rhythm,
            aiohttp.ClientSession() as session,
        ):
            url, headers = await _rhythm_setup(session, rhythm)
            sides = {
                "baseline": (plain.url + "/", {}, plain.url),
                "rhythm": (url, headers, rhythm.url),
            }
            results: dict[str, list[tuple[float, float]]] = {"baseline": [], "rhythm": []}
            for r in range(rounds):
                for side in ["baseline", "rhythm"] if r % 2 == 0 else ["rhythm", "baseline"]:
                    target, side_headers, base = sides[side]
                    results[side].append(await _move(session, target, side_headers, files, base))
            for index, what in ((0, "upload"), (1, "download")):
                ratios = [
                    r[index] / b[index]
                    for r, b in zip(results["rhythm"], results["baseline"], strict=True)
                ]
                plain_rate = statistics.median(b[index] for b in results["baseline"])
                rhythm_rate = statistics.median(r[index] for r in results["rhythm"])
                print(
                    f"{what:>8}: baseline {plain_rate:7.1f} MB/s  rhythm {rhythm_rate:7.1f} MB/s"
                    f"  median per-round ratio {statistics.median(ratios):.0%} (goal >= 70%)"
                )

            assert rhythm.proc is not None
            pid = rhythm.proc.pid
            before, peak, done = _rss_mb(pid), 0.0, False
            big = [os.urandom(25 * MB) for _ in range(8)]

            async def sample() -> None:
                nonlocal peak
                while not done:
                    peak = max(peak, _rss_mb(pid))
                    await asyncio.sleep(0.01)

            sampler = asyncio.create_task(sample())

            async def one(content: bytes) -> None:
                async with session.post(url, data=_form(content), headers=headers) as resp:
                    assert resp.status == 201, await resp.text()

            await asyncio.gather(*(one(content) for content in big))
            done = True
            await sampler
            print(
                f"RSS during 8 parallel 25 MB uploads: {before:.0f} MB before, peak {peak:.0f}"
                f" MB (+{peak - before:.0f} MB; goal < +50 MB)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main_async(args.rounds, args.files))


if __name__ == "__main__":
    main()
