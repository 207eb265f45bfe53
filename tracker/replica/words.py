"""A sync's outcome in plain words (and as JSON for scripts).

pushed 3: applied 2, merged 1 (WEB-42 description: merged with another edit)
WEB-~3fa9c is now WEB-124
REJECTED WEB-91 status -> Done: it is Closed now. Text kept: rhythm sync --rejected
pulled 57 changes from 4 people
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tracker.replica.drafts import Draft
from tracker.replica.engine import CLOCK_WARNING_SECONDS, Report

_ORDER = ("applied", "noop", "conflict_applied", "merged", "kept_both", "rejected", "deferred",
          "duplicate")  # fmt: skip
_NAMES = {"conflict_applied": "applied over another edit", "kept_both": "kept both",
          "noop": "already so"}  # fmt: skip


def lines(report: Report) -> list[str]:
    out: list[str] = []
    answered = report.pushed + report.local_rejects
    if answered:
        counts = Counter(r.get("status", "?") for _, r in answered)
        parts = [f"{_NAMES.get(s, s)} {counts[s]}" for s in _ORDER if counts.get(s)]
        notes = [
            _note(m, r) for m, r in answered if r.get("status") in ("merged", "conflict_applied")
        ]
        tail = f" ({'; '.join(notes)})" if notes else ""
        out.append(f"pushed {len(answered)}: {', '.join(parts)}{tail}")
    if report.new_client:
        out.append("this replica got a new client id (it was copied, or the server forgot it);"
                   " its pending changes were renumbered and pushed again")  # fmt: skip
    for old, new in report.renamed:
        out.append(f"{old} is now {new}")
    out += [draft_line(d) for d in report.drafts]
    for m, r in answered:
        if r.get("status") == "rejected":
            out.append(f"REJECTED {m.get('label') or m['name']}: {reason(r)}."
                       " Text kept: rhythm sync --rejected")  # fmt: skip
        elif r.get("status") == "deferred":
            out.append(
                f"WAITING {m.get('label') or m['name']}: the server does not know"
                f" {m['name']}@{m['v']} yet (upgrade the server); kept pending"
            )
    if report.stopped == "incomplete":
        out.append("the server stopped the push early (busy) and did not finish after"
                   f" {report.retried} retries; the rest is kept pending: run `rhythm sync`"
                   " again")  # fmt: skip
    for u in report.uploads:
        item = u["upload"]
        name = f"{item['filename']} ({item['size']} bytes) for {u.get('key') or item['issue_key']}"
        if u["status"] == "uploaded":
            out.append(f"uploaded {name}")
        elif u["status"] == "already_there":
            out.append(f"uploaded {name} (the server already had it from an interrupted try)")
        elif u["status"] == "waiting":
            out.append(f"WAITING upload {name}: {u.get('detail')}; kept for the next sync")
        else:
            out.append(f"REFUSED upload {name}: {reason({'problem': u.get('problem')})}."
                       " File kept: rhythm sync --rejected")  # fmt: skip
    for key in report.removed_projects:
        out.append(f"{key} is no longer visible to you: its data left this replica")
    for key in report.added_projects:
        out.append(f"{key} is now visible to you: copied into this replica")
    if report.reset:
        out.append(f"the server asked for a fresh copy ({report.reset}): re-cloned,"
                   " pending changes kept")  # fmt: skip
    if report.lost_acked:
        out.append(
            f"the server's history was restored: {len(report.lost_acked)} change(s) it"
            " had acknowledged may be gone (listed by `rhythm sync --json`)"
        )
    people = len(report.people)
    if report.pulled or not answered:
        who = f" from {people} {'person' if people == 1 else 'people'}" if people else ""
        out.append(f"pulled {report.pulled} change{'s' if report.pulled != 1 else ''}{who}")
    warning = clock_warning(report.clock_offset)
    if warning:
        out.append(warning)
    return out


def draft_line(draft: Draft) -> str:
    """`WEB-42 description: both edited, kept the server's; your text is a draft — …`."""
    return (f"{draft.words}: both edited, kept the server's; your text is a draft —"
            f" `{draft.command}`")  # fmt: skip


def clock_warning(offset: float | None) -> str | None:
    if offset is None or abs(offset) <= CLOCK_WARNING_SECONDS:
        return None
    minutes = int(abs(offset) // 60)
    way = "ahead of" if offset > 0 else "behind"
    return (f"warning: this computer's clock is {minutes // 60}h {minutes % 60}m {way} the"
            " server; the server's time is what counts")  # fmt: skip


def _note(m: dict[str, Any], r: dict[str, Any]) -> str:
    label = m.get("label") or m["name"]
    status = r.get("status")
    if status == "merged":
        return f"{label}: merged with another edit"
    conflicts = r.get("conflicts") or ([r["conflict"]] if r.get("conflict") else [])
    said = ", ".join(
        f"{str(c.get('field')).removeprefix('custom_fields.')} was {c.get('overwritten')!r}"
        f" (you last saw {c.get('base')!r})"
        for c in conflicts
    )
    return f"{label}: {said or 'applied over a newer value'}"


def reason(r: dict[str, Any]) -> str:
    problem = r.get("problem") or {}
    code = problem.get("code") or ""
    detail = problem.get("detail") or problem.get("title") or code
    return f"{detail} [{code}]" if code else str(detail)


def as_json(report: Report) -> dict[str, Any]:
    return {
        "pushed": [{"mutation": m, "result": r} for m, r in report.pushed],
        "rejected_locally": [{"mutation": m, "result": r} for m, r in report.local_rejects],
        "renamed": [{"from": a, "to": b} for a, b in report.renamed],
        "pulled": report.pulled, "people": sorted(report.people),
        "removed_projects": report.removed_projects, "added_projects": report.added_projects,
        "reset": report.reset, "new_client": report.new_client,
        "lost_acked": report.lost_acked, "clock_offset_seconds": report.clock_offset,
        "stopped": report.stopped, "retried": report.retried, "uploads": report.uploads,
        "drafts": [d.as_dict() for d in report.drafts],
    }  # fmt: skip
