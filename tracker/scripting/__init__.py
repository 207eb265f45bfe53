"""Lua automation scripts: the sandbox (pure Lua 5.4 via lupa), the killable worker
pool that runs it, and the plain-data jobs and results that cross between them.

Nothing here touches a database: a run reads through a callback the services
layer answers, and returns its intended changes as data for services to apply.
"""
