"""The joined route list: every handler module's `ROUTES`, in one place.

Routes are declared next to their handlers (each module exports `ROUTES`); the
machinery that binds them lives in `binding.py`, which handler modules import.
Nothing imports this module but the app and tests, so there is no import loop.
"""

from __future__ import annotations

from tracker.http.binding import Route
from tracker.http.handlers import ROUTE_MODULES


def all_routes() -> list[Route]:
    """Every route of the API, from every handler module."""
    routes: list[Route] = []
    for module in ROUTE_MODULES:
        routes.extend(module.ROUTES)
    return routes
