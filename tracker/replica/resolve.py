"""`rhythm issue resolve`: finish a text draft (tracker/replica/drafts.py).

The chosen text is recorded as a new `issue.set_description` (or `comment.edit`)
whose base is the server's text the draft was made against; the draft is
marked with that mutation's hash and goes when the server answers it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tracker.domain.models.comments import CommentIn
from tracker.domain.models.issues import IssuePatch
from tracker.domain.text_merge import has_markers
from tracker.errors import NotFound, ValidationFailed
from tracker.replica import drafts
from tracker.replica.drafts import Draft
from tracker.replica.engine import Replica
from tracker.replica.store import Mutation, mutation_hash


def find(replica: Replica, key: str, field: str | None) -> Draft:
    """The one draft of `key` (by `field` when it has several)."""
    issue_id = _issue_id(replica, key)
    found = [
        d for d in drafts.listed(replica.journal.conn)
        if d.issue_id == issue_id or d.key.upper() == key.upper()
    ]  # fmt: skip
    if field is not None:
        found = [d for d in found if d.field == field]
    if not found:
        more = f" for {field}" if field else ""
        raise NotFound(f"no draft on {key.upper()}{more} (`rhythm status` lists them)")
    if len(found) > 1:
        fields = ", ".join(d.field for d in found)
        raise ValidationFailed([("--field", f"{key.upper()} has drafts for {fields}: pick one")])
    return found[0]


def _issue_id(replica: Replica, key: str) -> str | None:
    from tracker.replica.commands import View

    view = View(replica)
    try:
        return str(view.issue(key)["id"])
    except (NotFound, ValidationFailed):
        return replica.journal.issue_for_key(key)  # gone from the view: its draft is not
    finally:
        view.close()


def record(replica: Replica, draft: Draft, text: str) -> Mutation | None:
    """Record the resolution (None: it is the server's text already; the draft is dropped)."""
    if has_markers(text):
        raise ValidationFailed([("text", "it still has conflict markers (<<<<<<<, =======,"
                                 " >>>>>>>): finish the merge first")])  # fmt: skip
    if text == draft.theirs:
        drop(replica, draft)
        return None
    try:
        if draft.field == "description":
            IssuePatch(description=text)
        else:
            CommentIn(body=text)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None
    name, args = _mutation(draft, text)
    mutation = replica.record(name, args, f"{draft.words} (resolving its draft)")
    with replica.journal.transaction() as conn:
        drafts.mark_resolving(conn, draft, mutation_hash(name, mutation.v, args))
    return mutation


def _mutation(draft: Draft, text: str) -> tuple[str, dict[str, Any]]:
    if draft.field == "description":
        return "issue.set_description", {"id": draft.issue_id, "base": draft.theirs, "text": text}
    comment_id = draft.field.partition(":")[2]
    return "comment.edit", {"id": comment_id, "base": draft.theirs, "body": text}


def drop(replica: Replica, draft: Draft) -> None:
    with replica.journal.transaction() as conn:
        drafts.drop(conn, draft)


def listed(replica: Replica) -> list[Draft]:
    return drafts.listed(replica.journal.conn)
