"""`bench/replay.py --quick` runs, so that the benchmark cannot rot: six months through the
real nodes on a real broker, and the same decision code in one process as its baseline.
Figures are not judged here (no timing checks in tests): only that every one is there."""

from __future__ import annotations

from tests.benchmarks import run_benchmark

NODE_PHASES = ("clock", "scores_and_targets", "deposit", "cycle_and_orders", "account")
INPROCESS_PHASES = ("scoring", "optimisation", "candidates", "search", "fills")
FIGURES = (
    "months",
    "nodes_months_per_s",
    "nodes_months_per_s_with_startup",
    "nodes_startup_s",
    "nodes_step_p50_s",
    "nodes_step_p95_s",
    "nodes_peak_rss_total_mb",
    "inprocess_months_per_s",
    "nodes_vs_inprocess",
    *(f"nodes_share_{p}" for p in NODE_PHASES),
    *(f"inprocess_s_{p}" for p in INPROCESS_PHASES),
)


def test_the_replay_benchmark_runs() -> None:
    figures = run_benchmark("replay.py", "--quick", timeout=300)
    missing = [name for name in FIGURES if name not in figures]
    assert not missing, missing
    assert all(figures[name] > 0 for name in FIGURES), figures
    assert isinstance(figures["target_met"], bool)
    assert all(mb > 0 for mb in figures["nodes_peak_rss_mb"].values()), figures["nodes_peak_rss_mb"]
