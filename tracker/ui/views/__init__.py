"""UI page handlers, one module per area; each handler parses, calls one service, renders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def all_routes() -> list[tuple[str, str, Callable[..., Any]]]:
    from tracker.ui.views import (
        accounts,
        attachments,
        board,
        issue_extras,
        issues,
        orgs,
        search,
        settings,
        settings_scripts,
        settings_webhooks,
        settings_workflow,
        sprints,
    )

    return [
        *accounts.ROUTES,
        *attachments.ROUTES,
        *orgs.ROUTES,
        *board.ROUTES,
        *issues.ROUTES,
        *issue_extras.ROUTES,
        *search.ROUTES,
        *sprints.ROUTES,
        *settings.ROUTES,
        *settings_workflow.ROUTES,
        *settings_scripts.ROUTES,
        *settings_webhooks.ROUTES,
    ]
