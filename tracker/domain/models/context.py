"""The query of the context dossier routes (SPEC §14)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: The default size budget of a dossier, in characters.
DEFAULT_MAX_CHARS = 8000


class ContextQuery(BaseModel):
    """`?max_chars=`: the dossier's size budget (query strings are text, so not strict)."""

    model_config = ConfigDict(extra="forbid")

    max_chars: int = Field(
        DEFAULT_MAX_CHARS, ge=1000, le=200_000, description="size budget in characters"
    )
