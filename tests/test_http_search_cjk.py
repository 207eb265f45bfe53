"""CJK search (issue 12 item 12): `日本語` finds `日本語のタイトル`.

unicode61 kept a CJK run as one token; now texts holding CJK are also indexed
segmented into bigrams (tracker.domain.fts.segment) and CJK query terms are
segmented the same way. Every write path (create, update, comments, bulk import,
migration backfill) keeps the external-content index exact: FTS5's own
`integrity-check` compares it with the view after each step.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api
from tests.issues_world import World, make_world
from tests.test_http_search import search
from tracker.domain.fts import build_match, segment
from tracker.domain.query import TextTerm, parse_query
from tracker.http.keys import CORE
from tracker.storage.migrate import _python_steps, load_migrations
from tracker.storage.search_index import backfill_cjk


@pytest.fixture
async def world(api: Api, client: Any) -> World:
    return await make_world(api, client)


async def titles(world: World, q: str) -> list[str]:
    status, body = await search(world, f"{q} sort:number")
    assert status == 200, (q, body)
    return [issue["title"] for issue in body["items"]]


async def check_index(world: World) -> None:
    """FTS5 compares every index entry with the content view (raises when they differ)."""
    core = world.client.app[CORE]
    async with core.tenants.lease(world.org["id"]) as db:
        await db.write(
            lambda conn: conn.execute(
                "INSERT INTO issue_search (issue_search, rank) VALUES ('integrity-check', 1)"
            )
        )


def test_segment_and_match_agree() -> None:
    assert segment("日本語のタイトル") == " 日本 本語 語の のタ タイ イト トル ル "
    assert segment("iPhone用ケース") == "iPhone 用ケ ケー ース ス "
    assert segment("plain text") == "plain text"
    match = build_match(parse_query("日本語 login").terms)
    assert match.positive == '"日本 本語" AND "login"'
    assert build_match(parse_query("語").terms).positive == '"語" *'
    assert build_match(parse_query("-日本語").terms).negative == '"日本 本語"'
    # user text stays inside quotes (doubled), whatever FTS5 syntax a CJK term holds
    hostile = TextTerm(text='日本") OR title:x NEAR(語', kind="word")
    assert build_match([hostile]).positive == '("日本" AND """) OR title:x NEAR(" AND "語" *)'


async def test_cjk_words_are_found_inside_longer_runs(world: World) -> None:
    for title in ("日本語のタイトル", "我们的项目计划", "한국어를 배우다", "iPhone用ケース",
                  "Plain English login"):  # fmt: skip
        await world.create(title=title)
    assert await titles(world, "日本語") == ["日本語のタイトル"]
    assert await titles(world, "タイトル") == ["日本語のタイトル"]
    assert await titles(world, "語") == ["日本語のタイトル"]  # a run's last character
    assert await titles(world, "日") == ["日本語のタイトル"]
    assert await titles(world, "项目") == ["我们的项目计划"]
    assert await titles(world, "한국어") == ["한국어를 배우다"]
    assert await titles(world, "iPhone用") == ["iPhone用ケース"]
    assert await titles(world, "ケース*") == ["iPhone用ケース"]
    assert await titles(world, "日本人") == []  # 日本 + 本人: not in any text
    assert await titles(world, "login") == ["Plain English login"]
    assert await titles(world, "-日本語 -项目 -한국어 -iPhone用") == ["Plain English login"]
    status, body = await search(world, "日本語", highlight="true")
    assert status == 200 and body["items"][0]["title"] == "日本語のタイトル"
    await check_index(world)


async def test_every_write_path_keeps_the_cjk_index_exact(world: World) -> None:
    issue = await world.create(title="Latin only", description="説明文です")
    assert await titles(world, "説明") == ["Latin only"]
    n = issue["number"]
    status, _ = await world.call("PATCH", world.url(f"/issues/{n}"), json={"description": "none"})
    assert status == 200
    assert await titles(world, "説明") == []
    assert await world.count("issue_cjk") == 0  # no CJK left, no row
    status, comment = await world.call(
        "POST", world.url(f"/issues/{n}/comments"), json={"body": "再現手順を追加"}
    )
    assert status == 201
    assert await titles(world, "手順") == ["Latin only"]
    status, _ = await world.call(
        "PATCH", world.url(f"/issues/{n}/comments/{comment['id']}"), json={"body": "steps added"}
    )
    assert status == 200
    assert await titles(world, "手順") == [] and await titles(world, "steps") == ["Latin only"]
    status, _ = await world.call("PATCH", world.url(f"/issues/{n}"), json={"title": "東京タワー"})
    assert await titles(world, "タワー") == ["東京タワー"]
    await check_index(world)


async def test_bulk_import_indexes_cjk(world: World) -> None:
    records = [{"title": "大阪の天気", "comments": [{"body": "雨が降る"}]},
               {"title": "No CJK here", "description": "ordinary"}]  # fmt: skip
    await import_lines(world, records)
    assert await titles(world, "天気") == ["大阪の天気"]
    assert await titles(world, "降る") == ["大阪の天気"]
    assert await titles(world, "ordinary") == ["No CJK here"]
    # a NUL in the text sends the batch down the row-by-row path (storage/bulk.py)
    await import_lines(world, [{"title": "With NUL", "description": "京都\u0000タワー"}])
    assert await titles(world, "京都") == ["With NUL"]
    await check_index(world)


async def import_lines(world: World, records: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    status, report = await world.call(
        "POST", world.url("/issues/import"), data=body,
        headers={"Content-Type": "application/x-ndjson"},
    )  # fmt: skip
    assert status == 200, report


async def test_migration_backfills_issues_written_before_it(world: World) -> None:
    assert ("tenant", "cjk_search") in _python_steps()
    assert "cjk_search" in {m.name for m in load_migrations("tenant")}
    await world.create(title="日本語のタイトル")
    core = world.client.app[CORE]

    def forget(conn: Any) -> None:  # the state migration 0010 starts from: no issue_cjk rows
        conn.execute("DELETE FROM issue_cjk")
        conn.execute("INSERT INTO issue_search (issue_search) VALUES ('rebuild')")

    async with core.tenants.lease(world.org["id"]) as db:
        await db.write(forget)
    assert await titles(world, "日本語") == []
    async with core.tenants.lease(world.org["id"]) as db:
        await db.write(backfill_cjk)
    assert await titles(world, "日本語") == ["日本語のタイトル"]
    await check_index(world)
