"""HTTP handlers, one module per resource; each exports ROUTES for the route table."""

from __future__ import annotations

from types import ModuleType

from tracker.http.handlers import accounts, docs, health, orgs, projects

#: Every module that contributes routes. Add a new resource module here.
ROUTE_MODULES: tuple[ModuleType, ...] = (health, accounts, orgs, projects, docs)
