"""Target weights and the paper broker's order round trip.

In one run:
- target weights (`nodes.optimization.model.optimize`: mean-variance max Sharpe with L2
  and bounds, HRP, the blend) for the bundled universe and for synthetic universes of
  100 and 500 securities (5 years, made from the bundled real returns as in
  `bench/scoring.py`), against the same run's bare PyPortfolioOpt max Sharpe on the same
  inputs (the least any mean-variance answer costs) as the baseline;
- the RSS of the optimization node, a real process on a real broker, after it computed
  the bundled universe's targets from the universe node's prices, and of its child
  process (`nodes/child.py`: PyPortfolioOpt, cvxpy and pandas until a minute after the
  last run);
- paper orders through the broker (a caller -> MQTT v5 request -> the trading node's
  limits, outbox and paper account -> reply), one after another, against direct calls
  of the paper adapter (`PaperBroker.place`) in this process, on the same kind of file.

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
from decimal import Decimal
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scoring import children_rss_mb, rss_mb, synthetic  # noqa: E402
from edge import Client  # noqa: E402
from edge.broker import DevBroker  # noqa: E402
from nodes.brokers.base import OrderSpec  # noqa: E402
from nodes.brokers.paper import PaperBroker  # noqa: E402
from nodes.optimization import model  # noqa: E402
from nodes.universe import bundle  # noqa: E402
from schemas import catalog as t  # noqa: E402
from schemas.optimization import Targets  # noqa: E402
from schemas.trading import PlaceOrder  # noqa: E402
from tests.market import publish_market  # noqa: E402


def bare_max_sharpe(prices: pd.DataFrame) -> None:
    from pypfopt import EfficientFrontier, expected_returns, risk_models

    kept, _ = model.select(prices, model.Settings())
    ef = EfficientFrontier(
        expected_returns.mean_historical_return(kept),
        risk_models.CovarianceShrinkage(kept).ledoit_wolf(),
        weight_bounds=(0, max(0.2, 1 / kept.shape[1])),
    )
    ef.max_sharpe(risk_free_rate=0.02)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def alternate(prices: pd.DataFrame, rounds: int) -> tuple[float, float, model.Result]:
    ours, bare = [], []
    for i in range(rounds):
        pair = [(ours, model.optimize), (bare, bare_max_sharpe)]
        for out, fn in pair if i % 2 == 0 else pair[::-1]:
            out.append(timed(fn, prices))
    return statistics.median(ours), statistics.median(bare), model.optimize(prices)


def _start(broker: DevBroker, name: str, tmp: Path, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **broker.settings(name).to_env(),
        "EDGE_STATE_DIR": str(tmp / "state"),
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "edge.run", name],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


async def optimization_rss(tmp: Path) -> dict[str, float]:
    broker = DevBroker(tmp / "run").start()
    procs = []
    try:
        done = asyncio.Event()
        started = time.perf_counter()
        async with Client(broker.settings("operator"), name="bench-opt") as c:
            await c.subscribe(
                c.topics.of(t.OPTIMIZATION_TARGETS),
                lambda m: done.set() if Targets.model_validate_json(m.payload).targets else None,
            )
            procs = [_start(broker, n, tmp, {}) for n in ("universe", "optimization")]
            async with asyncio.timeout(300):
                await done.wait()
        ready = time.perf_counter() - started
        await asyncio.sleep(1.0)
        return {
            "optimization_rss_mb": round(rss_mb(procs[1].pid), 1),
            "optimization_child_rss_mb": round(children_rss_mb(procs[1].pid), 1),
            "first_targets_s": round(ready, 2),
        }
    finally:
        _stop(procs)
        broker.stop()


def _spec(ref: int) -> OrderSpec:
    return OrderSpec(
        broker_ref=ref,
        client_order_id=f"d-{ref}",
        symbol="AAPL.US",
        side="buy" if ref % 2 else "sell",
        quantity=Decimal(1),
        currency="USD",
        limit_price=None,
        quote=Decimal("237.33"),
    )


def direct_orders(tmp: Path, n: int) -> float:
    """Orders per second of the paper adapter called directly (one transaction each)."""
    paper = PaperBroker(tmp / "direct.sqlite")
    paper.deposit(Decimal(10**9), "USD")
    start = time.perf_counter()
    for ref in range(1, n + 1):
        assert paper.place(_spec(ref)).evidence == "fill"
    rate = n / (time.perf_counter() - start)
    paper.close()
    return rate


async def broker_orders(tmp: Path, n: int) -> float:
    """Orders per second through MQTT and the trading node, one after another."""
    account = tmp / "paper.sqlite"
    paper = PaperBroker(account)
    paper.deposit(Decimal(10**9), "USD")
    paper.close()
    broker = DevBroker(tmp / "run-orders").start()
    procs = []
    try:
        async with (
            Client(broker.settings("universe"), name="bench-market") as market,
            Client(broker.settings("operator"), name="bench-orders") as c,
        ):
            await publish_market(market)
            procs = [
                _start(
                    broker,
                    "trading",
                    tmp,
                    {"PAPER_ACCOUNT": str(account), "EDGE_MODE": "paper", "TRADING_MAX_DAILY_TURNOVER": "1000000000"},
                )
            ]
            for _ in range(100):  # until the node answers
                try:
                    await c.call(t.TRADING_ORDERS, t.TRADING_ORDERS.model(), timeout=1)
                    break
                except Exception:
                    await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)  # the retained quotes reach it
            warm = PlaceOrder(client_order_id="warm", symbol="AAPL.US", side="buy", quantity=Decimal(1), currency="USD")
            assert (await c.call(t.TRADING_ORDER, warm, timeout=10)).status == "filled"
            start = time.perf_counter()
            for i in range(1, n + 1):
                order = PlaceOrder(
                    client_order_id=f"b-{i}",
                    symbol="AAPL.US",
                    side="buy" if i % 2 else "sell",
                    quantity=Decimal(1),
                    currency="USD",
                )
                assert (await c.call(t.TRADING_ORDER, order, timeout=10)).status == "filled"
            return n / (time.perf_counter() - start)
    finally:
        _stop(procs)
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    rounds, orders = (3, 100) if a.quick else (5, 500)
    prices = bundle.frame()
    model.optimize(prices)  # warm-up: imports, cvxpy's first compile
    closes, spy = prices.drop(columns=["SPY.US"]), prices["SPY.US"]
    rows = {"bundled (20 securities)": alternate(prices, rounds)}
    for n in (100, 500):
        big, _ = synthetic(closes, spy, n, years=5)
        rows[f"synthetic: {n} securities, 5 y"] = alternate(big, max(1, rounds // 2) if n == 500 else rounds)
    with tempfile.TemporaryDirectory(prefix="edge-bench-opt-") as tmp:
        rss = asyncio.run(optimization_rss(Path(tmp)))
        direct = direct_orders(Path(tmp), orders)
        via = asyncio.run(broker_orders(Path(tmp), orders))

    print(f"{'target weights':34} {'ours s':>8} {'bare max_sharpe s':>18} {'ratio':>6}  method, fallbacks")
    for name, (ours, bare, r) in rows.items():
        print(
            f"{name:34} {ours:8.3f} {bare:18.3f} {ours / bare:6.2f}  {r.mean_variance_method}+{r.hrp_method}, "
            f"{len(r.fallbacks)} fallback(s)"
        )
    print(
        f"optimization node RSS after the bundled targets  {rss['optimization_rss_mb']:6.1f} MB "
        f"(its child until a minute after the last run: {rss['optimization_child_rss_mb']:.1f} MB; "
        f"first targets {rss['first_targets_s']:.1f} s after start, with the universe's first sync)"
    )
    print(
        f"paper orders: through the broker {via:8.1f}/s   direct adapter calls {direct:8.1f}/s   "
        f"time ratio {direct / via:5.2f}x ({orders} orders each)"
    )
    values = list(rows.values())
    print(
        json.dumps(
            {
                "optimize_bundled_s": round(values[0][0], 4),
                "optimize_100_s": round(values[1][0], 4),
                "optimize_500_s": round(values[2][0], 4),
                "bare_max_sharpe_bundled_s": round(values[0][1], 4),
                "bare_max_sharpe_100_s": round(values[1][1], 4),
                "bare_max_sharpe_500_s": round(values[2][1], 4),
                "optimize_ratio_vs_bare_500": round(values[2][0] / values[2][1], 3),
                **rss,
                "paper_orders_per_s": round(via, 1),
                "paper_direct_orders_per_s": round(direct, 1),
                "paper_order_ratio_vs_direct": round(direct / via, 3),
                "orders": orders,
                "rounds": rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
