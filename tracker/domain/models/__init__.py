"""Pydantic models: request bodies (`...In` / `...Patch`) and responses, one module per area."""
