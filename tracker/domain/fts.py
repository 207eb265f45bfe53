"""Parsed text terms -> an FTS5 MATCH expression built only from quoted strings.

Raw user text in MATCH is a second query language (docs/reliability.md §3.2): `-x`,
`a:b` and `C++` are errors, `secret_note:acme` filters on any indexed column, and
a NUL byte ends even a quoted string. Every term therefore passes through `quote`,
and the only operators in the result are the ones emitted here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tracker.domain.query import TextTerm, is_control_char


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchPlan:
    """What the compiler feeds to `issue_search MATCH ?`.

    `positive` is the expression to match (it already excludes negated terms with
    NOT). FTS5 cannot evaluate NOT without a positive side, so when every term is
    negated `positive` is None and `negative` holds the terms to exclude:
    `rowid NOT IN (SELECT rowid FROM issue_search WHERE issue_search MATCH :negative)`.
    Both None means there is no full-text condition at all.
    """

    positive: str | None
    negative: str | None


def quote(text: str) -> str:
    """The one quoting function: any text becomes a single FTS5 string (a phrase of its tokens).

    Control characters become spaces rather than vanishing, so `a<NUL>b` stays two words.
    """
    clean = "".join(" " if is_control_char(ch) else ch for ch in text)
    return '"' + clean.replace('"', '""') + '"'


def build_match(terms: Iterable[TextTerm]) -> MatchPlan:
    """AND the positive terms, exclude the negated ones; see MatchPlan for the all-negated case."""
    terms = list(terms)
    positives = [_operand(term) for term in terms if not term.negated]
    negatives = " OR ".join(_operand(term) for term in terms if term.negated) or None
    if not positives:
        return MatchPlan(positive=None, negative=negatives)
    positive = " AND ".join(positives)
    if negatives:
        positive = f"({positive}) NOT ({negatives})"
    return MatchPlan(positive=positive, negative=None)


def _operand(term: TextTerm) -> str:
    # A prefix is `"abc" *`: the star sits outside the quotes, where FTS5 reads it
    # as the prefix operator for the string's last token.
    return quote(term.text) + " *" if term.kind == "prefix" else quote(term.text)
