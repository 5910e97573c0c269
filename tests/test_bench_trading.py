"""`bench/trading.py --quick` runs, so that the benchmark cannot rot: the real trading node in
live mode against the fake Tradernet, the adapter as its baseline, fills seen at the next poll.
Figures are not judged here (no timing checks in tests): only that every one is there."""

from __future__ import annotations

import json
import subprocess
import sys

from edge.settings import REPO_ROOT

FIGURES = (
    "orders_per_s",
    "adapter_orders_per_s",
    "node_vs_adapter",
    "fill_to_outbox_s",
    "fill_to_outbox_p95_s",
    "trading_rss_mb",
)


def test_the_trading_benchmark_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "trading.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(figures[name] > 0 for name in FIGURES), figures
    assert figures["fills"] > 0 and figures["orders"] > 0
