"""The one spelling of an email address that accounts are stored and looked up by.

`normalize_email` is NFKC followed by Unicode case folding, so fullwidth
`ANN@example.com`, `Ann@Example.com` and `ann@example.com` name one account: the
registration, login, member-by-email, search (`assignee:ann@…`), import and
login-throttle paths all call it, and the users SQL (tracker.storage.users)
applies it to every address it stores or looks up, so no caller can forget.

Control and format characters (Unicode Cc, Cf: NUL, newlines, zero-width spaces,
bidi overrides) and lone surrogates are refused rather than stripped: an address
that differs from another only by an invisible character is a spoofing tool.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories no email address or tag name may contain.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def has_invisible_char(text: str) -> bool:
    """True if `text` holds a control, format (zero-width, bidi) or surrogate character."""
    return any(unicodedata.category(ch) in FORBIDDEN_CATEGORIES for ch in text)


def normalize_email(text: str) -> str:
    """NFKC + case fold (and trimmed): the form stored and compared."""
    return unicodedata.normalize("NFKC", text.strip()).casefold()


def check_email(text: str) -> str:
    """A request's email as stored: ValueError for invisible characters, else normalized."""
    if has_invisible_char(text):
        raise ValueError("must not contain control or invisible characters")
    return normalize_email(text)
