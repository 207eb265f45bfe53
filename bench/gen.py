"""Deterministic test data: N issues of realistic text (with comments) in one tenant.

    .venv/bin/python -m bench.gen --data-dir /tmp/rhythm-1m --issues 1000000

Creates a user (`bench@example.com`, password `bench-Passw0rd-long-enough!`), an
org `bench` and PROJECTS projects (the last one private), then loads the issues
through the bulk import path (tracker.services.imports), timing only the import.

Text follows a Zipf law over a vocabulary of real tracker words followed by a
long tail of made-up words, so every frequency class exists at every size:
function words in nearly every issue, component names in a few percent, and
tail words in a handful. The same seed gives the same text, numbers and dates.

`--cjk-share F` gives that share of issues a title and a paragraph of CJK text
(Japanese-like: words of 2-4 ideographs and kana, written without spaces, Zipf
again), drawn from a second random stream, so the Latin text stays the same.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.api import PASSWORD
from bench.raw_import import RawImporter
from tracker.core import Core, open_core
from tracker.domain.changes import Actor, Origin
from tracker.domain.ids import iso
from tracker.domain.models.accounts import RegisterIn
from tracker.domain.models.orgs import OrgIn, ProjectIn
from tracker.domain.permissions import OrgRole
from tracker.services import accounts, orgs, projects
from tracker.services.access import OrgAccess, OrgRef, ProjectAccess
from tracker.services.accounts import Principal
from tracker.services.acting import act_as
from tracker.services.imports import (
    ImportComment,
    ImportIssue,
    import_issues,
    optimize_search,
)
from tracker.settings import Settings

EMAIL = "bench@example.com"
ORG = "bench"
PROJECT_KEYS = ("CORE", "WEB", "API", "OPS", "SEC", "DATA", "INFRA", "MOBILE")
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)

FUNCTION_WORDS = (  # noqa: SIM905 (a word list reads better as text)
    "the to and a of in is it when on for with not after this that be from an "
    "are was but we can should if at by as all does have or has no now only"
).split()
TRACKER_WORDS = (  # noqa: SIM905 (a word list reads better as text)
    "error page user login crash fails button api request response timeout server "
    "client database query slow update delete create save load file upload download "
    "report dashboard settings profile email password session token cache memory "
    "network connection test build deploy release version config permission access "
    "search filter sort list table view form field value input output message "
    "notification event log warning exception stack trace null undefined missing "
    "broken wrong incorrect expected actual behaviour display render layout style "
    "mobile browser chrome firefox safari windows linux mac android ios screen "
    "click scroll modal dialog menu sidebar header footer link image icon font "
    "translation locale timezone date time format export import csv pdf json xml "
    "sync offline retry queue worker job schedule cron webhook script plugin theme "
    "admin member role team project issue comment tag sprint board backlog "
    "migration index schema backup restore encryption certificate proxy gateway "
    "latency throughput regression flaky intermittent randomly sometimes always "
    "customer reported support ticket priority urgent blocker workaround"
).split()
SYLLABLES = (  # noqa: SIM905 (a word list reads better as text)
    "ka lo mi nu re sa ti vo ze ba de fi go hu ja ke li mo ny pa qu ro su ta "
    "ul ve wi xo ya zu bri cla dro fle gra ple sto tri vla"
).split()
TAIL_SIZE = 60_000
ZIPF_S = 1.07
TYPES = ("bug", "bug", "bug", "feature", "task", "task", "improvement", "story")
PRIORITIES = ("normal",) * 6 + ("major",) * 2 + ("minor", "critical")


def build_vocabulary(rng: random.Random) -> list[str]:
    """Real words first (most frequent), then a deterministic tail of made-up words."""
    tracker = TRACKER_WORDS[:]
    rng.shuffle(tracker)
    tail: set[str] = set()
    known = set(FUNCTION_WORDS) | set(tracker)
    while len(tail) < TAIL_SIZE:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in known:
            tail.add(word)
    return FUNCTION_WORDS + tracker + sorted(sorted(tail), key=lambda w: rng.random())


class TextModel:
    """Zipf-distributed words; draws in bulk because random.choices is the hot loop."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = build_vocabulary(self.rng)
        weights = [1 / (rank**ZIPF_S) for rank in range(1, len(self.words) + 1)]
        self.cum = list(itertools.accumulate(weights))
        self._pool: list[str] = []
        self._next = 0

    def draw(self, n: int) -> list[str]:
        if self._next + n > len(self._pool):
            self._pool = self.rng.choices(self.words, cum_weights=self.cum, k=max(n, 200_000))
            self._next = 0
        self._next += n
        return self._pool[self._next - n : self._next]

    def sentence(self, low: int, high: int) -> str:
        words = self.draw(self.rng.randint(low, high))
        return " ".join(words).capitalize() + "."

    def paragraph(self, low: int, high: int) -> str:
        return " ".join(self.sentence(5, 12) for _ in range(self.rng.randint(low, high)))


#: Characters the CJK words are made of: 600 common-range ideographs, then kana.
CJK_IDEOGRAPHS = [chr(0x4E00 + (n * 37) % 0x5000) for n in range(600)]
KANA = [chr(c) for c in range(0x30A2, 0x30F3)] + list("のはがをにでとも")
CJK_WORDS = 20_000


def cjk_vocabulary(seed: int) -> list[str]:
    """Deterministic CJK "words" (2-4 characters), most frequent first."""
    rng = random.Random(seed + 7)
    words: set[str] = set()
    while len(words) < CJK_WORDS:
        chars = CJK_IDEOGRAPHS if rng.random() < 0.8 else KANA
        words.add("".join(rng.choice(chars) for _ in range(rng.randint(2, 4))))
    return sorted(sorted(words), key=lambda w: rng.random())  # a set's order varies by run


class CjkText:
    """Zipf-distributed CJK words written without spaces, sentences ending in 。."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed + 11)
        self.words = cjk_vocabulary(seed)
        self.cum = list(itertools.accumulate(1 / r**ZIPF_S for r in range(1, CJK_WORDS + 1)))

    def sentence(self, low: int, high: int) -> str:
        count = self.rng.randint(low, high)
        return "".join(self.rng.choices(self.words, cum_weights=self.cum, k=count)) + "。"


def generate(
    count: int, reporters: list[str], seed: int = 1, cjk_share: float = 0.0
) -> Iterator[ImportIssue]:
    """`count` issues in creation order, spread over three years from START."""
    text = TextModel(seed)
    rng = text.rng
    cjk = CjkText(seed)
    step = SPAN / max(count, 1)
    for n in range(count):
        created = START + step * n + timedelta(seconds=rng.randint(0, 600))
        issue = _issue(text, rng, reporters, created)
        if cjk_share and cjk.rng.random() < cjk_share:
            paragraph = "".join(cjk.sentence(4, 12) for _ in range(cjk.rng.randint(1, 3)))
            issue = dataclasses.replace(
                issue,
                title=cjk.sentence(3, 8)[:-1],
                description=f"{issue.description}\n{paragraph}",
            )
        yield issue


def _issue(
    text: TextModel, rng: random.Random, reporters: list[str], created: datetime
) -> ImportIssue:
    age = (START + SPAN - created).days
    done = rng.random() < min(0.9, age / 400)
    updated = created + timedelta(hours=rng.randint(0, 24 * 20))
    comments = tuple(
        ImportComment(
            author=rng.choice(reporters),
            body=text.paragraph(1, 2),
            created_at=iso(created + timedelta(hours=k + 1)),
        )
        for k in range(rng.choice((0, 0, 0, 1, 1, 2, 3)))
    )
    return ImportIssue(
        title=text.sentence(4, 10)[:-1],
        description=text.paragraph(1, 4),
        reporter=rng.choice(reporters),
        created_at=iso(created),
        updated_at=iso(updated),
        stage=rng.choice(("Resolved", "Closed")) if done else rng.choice(("Open", "In Progress")),
        resolved_at=iso(updated) if done else None,
        type=rng.choice(TYPES),
        priority=rng.choice(PRIORITIES),
        comments=comments,
    )


async def setup_org(core: Core, project_count: int) -> tuple[str, str, list[ProjectAccess]]:
    """The bench user, org and projects; returns (user id, org id, project accesses)."""
    user = await accounts.register(core, RegisterIn(email=EMAIL, password=PASSWORD))
    actor = Actor(user.id, "system")
    org = await orgs.create_org(core, Principal(user.id), OrgIn(name=ORG, slug=ORG), actor)
    access = OrgAccess(user.id, OrgRef(org.id, org.slug, org.name, OrgRole.OWNER))
    targets = []
    for index, key in enumerate(PROJECT_KEYS[:project_count]):
        private = index == project_count - 1 and project_count > 1
        data = ProjectIn(name=key.title(), key=key, visibility="private" if private else "org")
        await projects.create_project(core, access, data, actor)
        targets.append((await act_as(core, org.slug, key, user.id, Origin.SYSTEM))[0])
    return user.id, org.id, targets


def pick_project(rng: random.Random, total: int) -> int:
    """Projects get 1/2, 1/4, 1/8... of the issues (the last one the remainder)."""
    index = 0
    while index < total - 1 and rng.random() >= 0.5:
        index += 1
    return index


async def load(
    settings: Settings, issues: int, project_count: int, seed: int, baseline: int,
    cjk_share: float = 0.0,
) -> None:  # fmt: skip
    async with open_core(settings, background=False) as core:
        user_id, org_id, targets = await setup_org(core, project_count)
        reporters = [user_id] + [f"0190{n:04x}-0000-7000-8000-{n:012x}" for n in range(40)]
        actor, done, spent = Actor(user_id, "system"), 0, 0.0
        placement = random.Random(seed + 1)
        stream = generate(issues, reporters, seed, cjk_share)
        # 100k issues per round, so each project's import_issues call gets several
        # batches to pipeline (its first batch's preparation is not overlapped).
        while chunk := list(itertools.islice(stream, 100_000)):
            groups: dict[int, list[ImportIssue]] = {}
            for issue in chunk:
                groups.setdefault(pick_project(placement, project_count), []).append(issue)
            began = time.perf_counter()
            for index, batch in sorted(groups.items()):
                await import_issues(core, targets[index], actor, batch)
            spent += time.perf_counter() - began
            done += len(chunk)
            print(f"\r{done:,} issues, {done / spent:,.0f}/s", end="", file=sys.stderr)
            if done - len(chunk) < baseline <= done:
                at_baseline = done / spent
        print(f"\nimported {done:,} issues in {spent:.1f} s: {done / spent:,.0f} issues/s")
        if baseline:
            raw = raw_import_rate(settings.data_dir / "raw-baseline.db", baseline, reporters, seed)
            print(f"first {baseline:,}: Rhythm {at_baseline:,.0f}/s (with change rows) vs raw "
                  f"sqlite3 {raw:,.0f}/s (same rows, FTS in the transaction, no log): "
                  f"{at_baseline / raw:.0%}")  # fmt: skip
        began = time.perf_counter()
        await optimize_search(core, org_id)
        print(f"optimize (FTS merge + statistics): {time.perf_counter() - began:.1f} s")


def raw_import_rate(path: Path, count: int, reporters: list[str], seed: int) -> float:
    """The raw stack (bench.raw_import): plain sqlite3, same schema and text, issues +
    comments + FTS rows with executemany in BATCH_SIZE transactions; no change log."""
    raw = RawImporter(path)
    try:
        wall, _ = raw.run(list(generate(count, reporters, seed)))
    finally:
        raw.conn.close()
    return count / wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gen", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--projects", type=int, default=4, choices=range(1, 9))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--baseline",
        type=int,
        default=100_000,
        help="issues for the raw sqlite3 comparison (0: none)",
    )
    parser.add_argument(
        "--cjk-share", type=float, default=0.0, help="share of issues with CJK text (0-1)"
    )
    args = parser.parse_args(argv)
    if (args.data_dir / "_system.db").exists():
        parser.error(f"{args.data_dir} already holds data; use a fresh directory")
    settings = Settings(data_dir=args.data_dir, log_level="warning")
    baseline = min(args.baseline, args.issues)
    asyncio.run(load(settings, args.issues, args.projects, args.seed, baseline, args.cjk_share))


if __name__ == "__main__":
    main()
