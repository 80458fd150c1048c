"""A stand-alone bot worker for ``tests/trading/test_recovery.py``: one real process that runs
``trading.services.runner.bot_step`` and stops at a chosen point, so the test can SIGKILL or
SIGSTOP it there like a real worker dying or freezing.

Run as ``python -m tests.trading.recovery_worker MODE BOT_ID FEED_NOW_ISO`` with the test's
environment plus ``M7_TEST_DB_NAME`` (the test database's name). Modes:

- ``kill``: claim and step; inside the step's transaction, after the trades, orders, fills and
  decisions are written but before the balances and the commit, print ``inside`` and block
  forever (the test kills the process there).
- ``stall``: claim, print ``claimed`` and sleep 1 s before the step's transaction (the test
  freezes the process with SIGSTOP meanwhile), then go on and print the step's report as JSON.

Nothing here is imported by the application: the hooks are patched in this process only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from unittest import mock


def main(mode: str, bot_id: int, feed_now: datetime) -> None:
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = os.environ["M7_TEST_DB_NAME"]
    import django

    django.setup()
    from trading.services import runner

    if mode == "kill":

        def block(self):
            print("inside", flush=True)
            while True:
                time.sleep(60)

        with mock.patch.object(runner.StepWriter, "write_balances_and_equity", block):
            runner.bot_step(bot_id=bot_id, now=feed_now)
    elif mode == "stall":
        real = runner._step_prepare

        def stall(*args, **kwargs):
            print("claimed", flush=True)
            time.sleep(1.0)
            return real(*args, **kwargs)

        with mock.patch.object(runner, "_step_prepare", stall):
            report = runner.bot_step(bot_id=bot_id, now=feed_now)
        print(json.dumps(report.as_dict()), flush=True)
    else:  # pragma: no cover
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3]))
