"""Org slug grammar, reserved names and derivation from a display name."""

from __future__ import annotations

import re
import unicodedata

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
MAX_SLUG = 40

# Route words, and Windows device names (a data dir may one day sit on such a file system).
RESERVED_SLUGS = frozenset(
    {
        "api", "admin", "system", "new", "settings", "login", "logout", "static", "docs",
        "health", "metrics", "auth", "users", "orgs", "www", "root", "_system",
        "con", "nul", "aux", "prn", *(f"com{i}" for i in range(1, 10)),
        *(f"lpt{i}" for i in range(1, 10)),
    }
)  # fmt: skip


def slug_problem(slug: str) -> str | None:
    """Why a requested slug is unacceptable, or None when it is fine."""
    if not SLUG_RE.match(slug):
        return "use 1-40 lowercase letters, digits and inner hyphens"
    if slug in RESERVED_SLUGS:
        return f"'{slug}' is reserved"
    return None


def slugify(name: str) -> str:
    """A slug from a display name: NFKD to ASCII, lowercase, hyphens between words."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:MAX_SLUG].strip("-")
    if not slug or slug in RESERVED_SLUGS:
        slug = f"org-{slug}" if slug else "org"
    return slug


def archive_name(slug: str, at: str) -> str:
    """The archive folder of a deleted org: `<slug>-<UTC timestamp>`, e.g. acme-20250101T120000123Z.

    `at` is an ISO time from ids.now_iso(); punctuation is dropped so the name is
    portable and sorts by time within one slug.
    """
    stamp = "".join(ch for ch in at if ch.isalnum())
    return f"{slug}-{stamp}"
