"""Rhythm: a fast, self-hosted issue tracker in one Python process.

`tracker.create_app` is the aiohttp application factory (tracker.http.app). It is
imported on first use, so `import tracker` (and CLI start-up, which reads only
`__version__`) does not pull in aiohttp and the whole HTTP layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracker.http.app import create_app

__version__ = "0.1.0"
__all__ = ["__version__", "create_app"]


def __getattr__(name: str) -> Any:
    """The lazy exports (PEP 562): loaded when first asked for, then cached."""
    if name == "create_app":
        from tracker.http.app import create_app

        globals()[name] = create_app
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
