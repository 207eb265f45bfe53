"""Child process for tests/test_notifications.py: dies by SIGKILL with notifications in flight.

Run as `python -m tests.notify_crash_child DATA_DIR SMTP_PORT HOOK OUT`. It sets up a
team over real HTTP (Ann reports an issue, Bob edits it), writes the ids to OUT and
kills itself:
- `queued`: after the consumer committed Bob's edits to the queue (window still open);
- `before_queue`: inside the consumer's transaction, before it commits (the edits are
  in the change log, the queue and the cursor are not).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tests.notify_world import notify_settings, start_rhythm
from tests.test_notifications import make_team
from tracker.storage import notifications as notify_sql


def die(*_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main(data_dir: Path, port: int, hook: str, out: Path) -> None:
    rhythm = await start_rhythm(notify_settings(data_dir, port, window=2.0))
    team = await make_team(rhythm)
    issue = await team.call("POST", "/issues", team.ann, json={"title": "Crash me"})
    out.write_text(json.dumps({"org": team.org["id"], "issue": issue["id"]}))
    if hook == "before_queue":
        notify_sql.add_event = die  # type: ignore[assignment]
    for priority in ("major", "critical", "minor"):
        await team.call("PATCH", f"/issues/{issue['number']}", team.bob,
                        json={"priority": priority})  # fmt: skip
    await rhythm.queued()
    die()


if __name__ == "__main__":
    data, port, hook, out = sys.argv[1:5]
    asyncio.run(main(Path(data), int(port), hook, Path(out)))
