"""UUIDv7 ids: valid, and strictly increasing within the process (creation order)."""

from __future__ import annotations

import uuid

from tracker.domain.ids import new_id


def test_ids_made_in_one_millisecond_still_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(20_000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[-1])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
