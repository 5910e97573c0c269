"""Scoring speed and the RSS of the universe and scoring nodes.

In one run:
- scoring the bundled universe (19 stocks against SPY) with `model.score_universe`
  (statistics of all securities at once) against `model.score_loop` (each security and
  each statistic on its own), the baseline, measured alternately in the same run;
- the same on a synthetic universe of 500 securities over 20 years, made from the
  bundled real returns (each synthetic security is a real stock's daily returns, with a
  random start shift and a small random drift added, so the statistics are realistic);
- the RSS of the universe and the scoring nodes, as real processes on a real broker,
  after the universe's full sync of the bundled data and the scoring of it, and of the
  scoring node's child process (`nodes/child.py`), which holds pandas, pandas-ta and
  empyrical until it ends, a minute after the last run.

The last line is one JSON object of the figures. `--quick` for a short run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge import Client  # noqa: E402
from edge.broker import DevBroker  # noqa: E402
from edge.message import Incoming  # noqa: E402
from nodes.scoring import model  # noqa: E402
from nodes.universe import bundle  # noqa: E402
from schemas import catalog as t  # noqa: E402
from schemas.scoring import Scores  # noqa: E402


def bundled() -> tuple[pd.DataFrame, pd.Series]:
    df = bundle.frame()
    return df.drop(columns=["SPY.US"]), df["SPY.US"]


def synthetic(
    closes: pd.DataFrame, spy: pd.Series, n: int, years: int = 20, seed: int = 1
) -> tuple[pd.DataFrame, pd.Series]:
    """n securities of `years` years from the real returns of the bundled stocks."""
    rng = np.random.default_rng(seed)
    days = 252 * years
    returns = closes.pct_change().iloc[1:]
    full = [c for c in returns.columns if returns[c].iloc[-days:].notna().all()]
    cols = {}
    for i in range(n):
        src = returns[full[i % len(full)]].iloc[-days:].to_numpy()
        shifted = np.roll(src, int(rng.integers(0, days)))
        drift = rng.normal(0, 0.0002)
        cols[f"S{i:03d}.US"] = 100 * np.cumprod(1 + shifted + drift)
    index = returns.index[-days:]
    return pd.DataFrame(cols, index=index), spy.reindex(index)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def alternate(closes: pd.DataFrame, bench: pd.Series, rounds: int) -> tuple[float, float]:
    """Median seconds of the vectorised scoring and of the loop, measured in turns."""
    fast, slow = [], []
    for i in range(rounds):
        pair = [(fast, model.score_universe), (slow, model.score_loop)]
        for out, fn in pair if i % 2 == 0 else pair[::-1]:
            out.append(timed(fn, closes, bench))
    return statistics.median(fast), statistics.median(slow)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children_rss_mb(pid: int) -> float:
    """The RSS of a process's children (a node's child process at work; each thread lists
    the children it started)."""
    kids = [k for task in Path(f"/proc/{pid}/task").iterdir() for k in (task / "children").read_text().split()]
    return sum(rss_mb(int(k)) for k in kids)


async def node_rss(tmp: Path) -> dict[str, float]:
    """Start a broker, the universe and the scoring nodes as processes; wait for the full
    sync and the scores; read their RSS."""
    broker = DevBroker(tmp / "run").start()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("universe", "scoring"):
            env = {
                **os.environ,
                **broker.settings(name).to_env(),
                "EDGE_STATE_DIR": str(tmp / "state"),
                "PYTHONPATH": str(ROOT),
            }
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "edge.run", name],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        done = asyncio.Event()
        started = time.perf_counter()

        def on_scores(msg: Incoming) -> None:
            if len(Scores.model_validate_json(msg.payload).scores) >= 20:
                done.set()

        async with Client(broker.settings("operator"), name="bench-scoring") as c:
            await c.subscribe(c.topics.of(t.SCORES), on_scores)
            async with asyncio.timeout(300):
                await done.wait()
        ready_s = time.perf_counter() - started
        await asyncio.sleep(1.0)
        return {
            "universe_rss_mb": round(rss_mb(procs["universe"].pid), 1),
            "scoring_rss_mb": round(rss_mb(procs["scoring"].pid), 1),
            "scoring_child_rss_mb": round(children_rss_mb(procs["scoring"].pid), 1),
            "sync_and_score_s": round(ready_s, 2),
        }
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    rounds = 3 if a.quick else 7
    closes, spy = bundled()
    model.score_universe(closes, spy)  # warm-up (imports, caches)
    fast_b, slow_b = alternate(closes, spy, rounds)
    big, big_bench = synthetic(closes, spy, 500)
    fast_500, slow_500 = alternate(big, big_bench, max(1, rounds // 3))
    with tempfile.TemporaryDirectory(prefix="edge-bench-scoring-") as tmp:
        rss = asyncio.run(node_rss(Path(tmp)))

    print(f"{'':34} {'vectorised s':>12} {'loop s':>8} {'speedup':>8}")
    print(f"{'bundled: 19 stocks, 2000-2024':34} {fast_b:12.3f} {slow_b:8.3f} {slow_b / fast_b:7.2f}x")
    print(f"{'synthetic: 500 securities, 20 y':34} {fast_500:12.3f} {slow_500:8.3f} {slow_500 / fast_500:7.2f}x")
    print(f"universe node RSS after the full sync   {rss['universe_rss_mb']:6.1f} MB (no pandas in that process)")
    print(f"scoring node RSS after scoring          {rss['scoring_rss_mb']:6.1f} MB", end=" ")
    print(f"(its child until a minute after the last run: {rss['scoring_child_rss_mb']:.1f} MB)")
    print(f"first start to 20 scores (sync + score) {rss['sync_and_score_s']:6.2f} s")
    print(
        json.dumps(
            {
                "scoring_speedup_vs_loop": round(slow_b / fast_b, 3),
                "scoring_speedup_vs_loop_500": round(slow_500 / fast_500, 3),
                "score_universe_s": round(fast_b, 4),
                "score_universe_loop_s": round(slow_b, 4),
                "score_500_s": round(fast_500, 3),
                "score_500_loop_s": round(slow_500, 3),
                **rss,
                "rounds": rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
