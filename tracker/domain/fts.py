"""Parsed text terms -> an FTS5 MATCH expression built only from quoted strings.

Raw user text in MATCH is a second query language (docs/reliability.md §3.2): `-x`,
`a:b` and `C++` are errors, `secret_note:acme` filters on any indexed column, and
a NUL byte ends even a quoted string. Every term therefore passes through `quote`,
and the only operators in the result are the ones emitted here.
"""

from __future__ import annotations

import re
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
    if has_cjk(term.text):
        return _cjk_operand(term.text, term.kind == "prefix")
    return quote(term.text) + " *" if term.kind == "prefix" else quote(term.text)


# --- CJK: segmented on both sides -------------------------------------------------------
#
# unicode61 keeps a run of CJK characters as one token, so `日本語` found nothing in
# `日本語のタイトル` (one token). Texts holding CJK are therefore indexed a second time
# in the `*_cjk` columns of issue_search, segmented by `segment`: each CJK run becomes
# its overlapping bigrams plus its last character, set apart from other text by
# spaces. A query term holding CJK is segmented the same way by `_cjk_operand`: a run
# of two or more characters is the phrase of its bigrams (consecutive tokens, so
# `日本語` matches `日本 本語` inside any longer run), a lone character is a prefix
# (`語` *: every character of a run starts one of its tokens). Terms without CJK are
# quoted exactly as before, so Latin queries cost what they did. See docs/search-cjk.md.

#: Han (with extensions and compatibility ideographs), kana (not the middle dot
#: U+30FB, a separator), bopomofo, Hangul syllables and jamo, halfwidth katakana.
CJK_CHARS = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3040-\u309f\u30a0-\u30fa\u30fc-\u30ff"
    "\u3100-\u312f\u3130-\u318f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f"
    "\uac00-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")


def has_cjk(text: str) -> bool:
    """isascii first: ~0.02 µs for a typical issue text, the regex ~30 ns per character."""
    return not text.isascii() and _CJK_RUN.search(text) is not None


def _bigrams(run: str) -> str:
    return " ".join(run[i : i + 2] for i in range(len(run) - 1))


def _grams(run: str) -> str:
    """Index side: the bigrams and the last character (so each character starts a token)."""
    return run if len(run) == 1 else f"{_bigrams(run)} {run[-1]}"


def segment(text: str) -> str:
    """A text as the `*_cjk` columns index it: `iPhone用ケース` -> `iPhone 用ケ ケー ース ス`."""
    return _CJK_RUN.sub(lambda run: f" {_grams(run.group())} ", text)


def _cjk_operand(text: str, prefix: bool) -> str:
    """One term holding CJK: its pieces ANDed (CJK runs as bigram phrases, the rest quoted)."""
    pieces: list[str] = []
    at = 0
    for run in _CJK_RUN.finditer(text):
        pieces.extend(_plain_pieces(text[at : run.start()]))
        chars = run.group()
        pieces.append(quote(_bigrams(chars)) if len(chars) > 1 else quote(chars) + " *")
        at = run.end()
    pieces.extend(_plain_pieces(text[at:]))
    if prefix and not pieces[-1].endswith("*"):
        pieces[-1] += " *"
    return pieces[0] if len(pieces) == 1 else "(" + " AND ".join(pieces) + ")"


def _plain_pieces(text: str) -> list[str]:
    """Non-CJK text between runs, if it holds anything unicode61 would index."""
    return [quote(text)] if any(ch.isalnum() for ch in text) else []
