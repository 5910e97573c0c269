"""`make longrun` in small, so that the harness itself cannot rot: 30,000 messages through a
real broker and real node processes, every restart kind, and every check of the full run.

It runs with `--drain` (the counter answers the adds in flight before each of its stops), so
that it is quick and checks the harness; the full run (`make longrun`) also stops the counter
in the middle of a burst of adds, which the runtime survives since a stop lets the handler in
hand finish and the counter keys its effect by msg-id."""

from __future__ import annotations

import json
import subprocess
import sys

from edge.settings import REPO_ROOT


def test_longrun_harness_small() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "longrun.py"), "--messages", "30000", "--drain"],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["ok"] and figures["failures"] == 0
    assert figures["messages"] >= 30_000
    assert figures["lost"] == 0 and figures["duplicates"] == 0 and figures["applied"] == figures["commands"]
    assert figures["sigterm"] >= 3 and figures["kill9"] >= 3 and figures["broker_restarts"] >= 2
    assert figures["mirror_refills"] >= 2 and figures["mirror_after_broker"] >= 2
    assert figures["driver_wraps"] >= 1 and figures["refused_detected"] == figures["refused_attempted"] > 0
    assert figures["rss_growth_mb_max"] < 5
