"""`bench/trading.py --quick` runs, so that the benchmark cannot rot: the real trading node in
live mode against the fake Tradernet, the adapter as its baseline, fills seen at the next poll.
Figures are not judged here (no timing checks in tests): only that every one is there."""

from __future__ import annotations

from tests.benchmarks import run_benchmark

FIGURES = (
    "orders_per_s",
    "adapter_orders_per_s",
    "node_vs_adapter",
    "fill_to_outbox_s",
    "fill_to_outbox_p95_s",
    "trading_rss_mb",
)


def test_the_trading_benchmark_runs() -> None:
    figures = run_benchmark("trading.py", "--quick", timeout=240)
    assert all(figures[name] > 0 for name in FIGURES), figures
    assert figures["fills"] > 0 and figures["orders"] > 0
