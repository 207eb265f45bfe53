"""HTTP handlers, one module per resource; each exports ROUTES for the route table."""

from __future__ import annotations

from types import ModuleType

from tracker.http.handlers import (
    accounts,
    attachments,
    boards,
    comments,
    context,
    docs,
    fields,
    health,
    imports,
    invites,
    issues,
    members,
    orgs,
    projects,
    relations,
    saved_searches,
    scripts,
    search,
    sprints,
    stages,
    sync,
    tags,
    time_entries,
    watchers,
    webhooks,
)

#: Every module that contributes routes. Add a new resource module here.
ROUTE_MODULES: tuple[ModuleType, ...] = (
    health,
    accounts,
    orgs,
    projects,
    docs,
    comments,
    relations,
    time_entries,
    members,
    invites,
    stages,
    sprints,
    boards,
    issues,
    imports,
    tags,
    fields,
    search,
    saved_searches,
    watchers,
    attachments,
    context,
    webhooks,
    scripts,
    sync,
)
