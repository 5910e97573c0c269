"""`bench/dashboard.py --quick` runs, so that the benchmark cannot rot: the dashboard as a real
process on a dev broker, headless Chromium with its tabs open, the halt flag's changes seen in
the pages and by mosquitto_sub. Figures are not judged here (no timing checks in tests): only
that every one is there."""

from __future__ import annotations

import pytest

from tests.benchmarks import run_benchmark

FIGURES = (
    "dashboard_rss_mb",
    "dashboard_rss_5_tabs_mb",
    "update_p50_ms",
    "update_p95_ms",
    "update_vs_sub_ratio",
    "sub_p95_ms",
    "page_load_s",
)


@pytest.mark.timeout(400)
def test_the_dashboard_benchmark_runs() -> None:
    figures = run_benchmark("dashboard.py", "--quick", timeout=360)
    assert all(figures[name] > 0 for name in FIGURES), figures
    assert figures["changes"] > 0 and figures["tabs"] == 5
    assert figures["missed"] == 0, figures
