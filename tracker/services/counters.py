"""Process-wide outcome counters of background work, read by `/metrics`.

Plain `Counter`s (no exporter import here: the CLI loads these services too and its
start-up time is measured). Bumped on the event loop; only ever grow.
"""

from __future__ import annotations

from collections import Counter

#: Script runs by recorded status (ok, error, timeout, memory, skipped, ...).
SCRIPT_RUNS: Counter[str] = Counter()
#: Webhook delivery attempts by outcome: delivered, retry (will be tried again),
#: failed (gave up or 410), blocked (address refused by the SSRF guard).
WEBHOOK_DELIVERIES: Counter[str] = Counter()
