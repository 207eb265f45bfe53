"""The offline replica: a local copy of what one person may see of one org on one server.

Design and file layout: docs/offline.md. In short, a replica directory holds
`replica.db` (meta and the pending / rejected / acked journals, the provisional
key table), `base/` (a data directory with the server's state as of the cursor,
written only by snapshot and pull) and `view/` (a data directory = base + the
pending mutations replayed), on which the ordinary CLI read code runs unchanged.
"""
