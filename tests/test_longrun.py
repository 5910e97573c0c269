"""`make longrun` in small, so that the harness itself cannot rot: 30,000 messages through a
real broker and real node processes, every restart kind, and every check of the full run.

It runs with `--drain` (the counter answers the adds in flight before each of its stops), so
that it is quick and checks the harness; the full run (`make longrun`) also stops the counter
in the middle of a burst of adds, which the runtime survives since a stop lets the handler in
hand finish and the counter keys its effect by msg-id."""

from __future__ import annotations

from tests.benchmarks import run_benchmark


def test_longrun_harness_small() -> None:
    figures = run_benchmark("longrun.py", "--messages", "30000", "--drain", timeout=110)
    assert figures["ok"] and figures["failures"] == 0
    assert figures["messages"] >= 30_000
    assert figures["lost"] == 0 and figures["duplicates"] == 0 and figures["applied"] == figures["commands"]
    assert figures["sigterm"] >= 3 and figures["kill9"] >= 3 and figures["broker_restarts"] >= 2
    assert figures["mirror_refills"] >= 2 and figures["mirror_after_broker"] >= 2
    assert figures["driver_wraps"] >= 1 and figures["refused_detected"] == figures["refused_attempted"] > 0
    assert figures["rss_growth_mb_max"] < 5
