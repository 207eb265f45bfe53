"""The web UI: a third thin door beside /api/v1 and the CLI (SPEC §13, docs/ui.md).

Server-rendered pages (Jinja2, autoescaped) that call the same service functions as
the API with the same typed access; htmx, SortableJS and Pico CSS are vendored static
files (static/VENDORED.md). `setup_ui(app, core_of)` adds the routes to an app;
`tracker.http.app.create_app(..., ui=True)` calls it.
"""

from tracker.ui.app import setup_ui, ui_routes

__all__ = ["setup_ui", "ui_routes"]
