"""The planner: the evaluator's speed, and a planning cycle's wall time.

In one run:
- the vectorised objective (`nodes.evaluator.objective.score_rows`) against the same
  objective one sequence at a time in plain Python (`score_loop`, the baseline), on the
  first 20,000 sequences of the exhaustive search (`--sequences`) of a synthetic
  200-security universe (5 years made from the bundled real returns, as in
  `bench/scoring.py`; targets, expected returns and covariance from the real optimiser; a
  portfolio holding 30 of them with idle cash; 40 candidate actions);
- a whole planning cycle through the broker (coordinator -> opportunity -> generator ->
  rounds of batches to the evaluators' shared subscription -> results -> plan proposed
  to planning), every node a real process, with the coordinator's defaults (a beam of
  5,000 over up to 5 actions), for the bundled universe and the synthetic one;
- a deep search on the synthetic universe (`--depth 6 --beam 200000 --batch 40000`:
  about 2.2 million sequences) with 1 and with 2 evaluator workers, alternately: what a
  second worker buys when there is work to share (a round's end waits for its last
  batch, so the more work a round has, the closer two workers come to 2x).

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
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scoring import synthetic  # noqa: E402
from edge import Client  # noqa: E402
from edge.broker import DevBroker  # noqa: E402
from nodes import matrix  # noqa: E402
from nodes.evaluator import objective  # noqa: E402
from nodes.generator import search  # noqa: E402
from nodes.money.fees import FeeSchedule  # noqa: E402
from nodes.money.fx import Rates  # noqa: E402
from nodes.opportunity import model as opp  # noqa: E402
from nodes.optimization import model as opt  # noqa: E402
from nodes.universe import bundle  # noqa: E402
from schemas import catalog as t  # noqa: E402
from schemas.common import utcnow  # noqa: E402
from schemas.optimization import Inputs, Target, Targets  # noqa: E402
from schemas.planning import CycleRequest, CycleResult  # noqa: E402
from schemas.portfolio import CashBalance, Holding, Summary  # noqa: E402
from schemas.scoring import Scores, SecurityScore  # noqa: E402
from schemas.universe import Quote, Quotes, Security, Universe  # noqa: E402

D = Decimal
LAST = date(2024, 11, 29)
FX = Rates(base="USD", per_unit={"EUR": D("1.0565")}, source="bench")
ENV = {
    "BASE_CURRENCY": "USD",
    "FX_RATES": "EUR=1.0565",
    "PLANNING_AUTO_APPROVE": "0",
    "EDGE_LOG": "WARNING",
    "COORDINATOR_BATCH_TIMEOUT_S": "30",
    "COORDINATOR_CYCLE_TIMEOUT_S": "300",
}


class World:
    """A universe, its scores, targets, optimisation inputs and a portfolio."""

    def __init__(self, prices: pd.DataFrame, held: int, cash: Decimal) -> None:
        self.result = opt.optimize(prices)
        self.closes = {s: D(str(round(float(prices[s].dropna().iloc[-1]), 4))) for s in prices.columns}
        symbols = sorted(self.closes)
        rng = np.random.default_rng(3)
        self.holdings = {s: D(int(rng.integers(1, 20))) for s in rng.choice(symbols, size=held, replace=False)}
        self.cash = cash
        self.scores = {s: 40.0 + (i * 7) % 60 for i, s in enumerate(symbols)}

    def actions(self):
        listings = {s: opp.Listing("USD", D(1), D(100), True) for s in self.closes}
        return opp.candidates(
            {s: opp.Holding(q, "USD") for s, q in self.holdings.items()},
            {"USD": self.cash},
            self.result.weights,
            self.scores,
            listings,
            self.closes,
            FeeSchedule(),
            FX,
            opp.Settings(band=Decimal(0), max_order=Decimal(10**9), daily_turnover=Decimal(10**9)),
        ).actions

    def targets(self) -> Targets:
        r = self.result
        return Targets(
            targets=[Target(symbol=s, weight=w, mean_variance=D(0), hrp=D(0)) for s, w in r.weights.items()],
            mean_variance_method="max_sharpe",
            hrp_method="hrp",
            fallbacks=[],
            blend=D("0.5"),
            returns_model="mean",
            risk_free_rate=D("0.02"),
            max_weight=D("0.2"),
            expected_return=D(0),
            volatility=D(0),
            sharpe=D(0),
            inputs_from=None,
            inputs_to=LAST,
            observations=r.observations,
            excluded=[],
            computed_at=utcnow(),
        )

    def inputs(self) -> Inputs:
        r = self.result
        return Inputs(
            symbols=list(r.mu.index),
            mu=[float(x) for x in r.mu],
            cov_b64=matrix.encode(r.cov.to_numpy()),
            inputs_to=LAST,
            computed_at=utcnow(),
        )

    def summary(self) -> Summary:
        positions = [
            Holding(
                symbol=s,
                quantity=q,
                average_price=self.closes[s],
                currency="USD",
                price=self.closes[s],
                value=q * self.closes[s],
                value_base=q * self.closes[s],
            )
            for s, q in sorted(self.holdings.items())
        ]
        held = sum((p.value_base for p in positions), D(0))
        return Summary(
            base="USD",
            mode="paper",
            broker="paper",
            positions=positions,
            cash=[CashBalance(currency="USD", amount=self.cash, amount_base=self.cash)],
            positions_base=held,
            cash_base=self.cash,
            total_base=held + self.cash,
            fx={"USD": D(1)},
            fx_source="bench",
            deposits_base=self.cash,
            dividends_base=D(0),
            at=utcnow(),
        )

    async def publish(self, clients: dict[str, Client]) -> None:
        now = utcnow()
        await clients["universe"].emit(
            t.UNIVERSE_SECURITIES,
            Universe(securities=[Security(symbol=s, name=s, currency="USD") for s in self.closes], at=now),
        )
        await clients["universe"].emit(
            t.UNIVERSE_QUOTES,
            Quotes(
                quotes={s: Quote(symbol=s, day=LAST, close=c, currency="USD") for s, c in self.closes.items()}, at=now
            ),
        )
        await clients["scoring"].emit(
            t.SCORES,
            Scores(
                scores=[SecurityScore(symbol=s, status="ok", score=v, days=1000) for s, v in self.scores.items()],
                as_of=LAST,
                benchmark="SPY.US",
                computed_at=now,
            ),
        )
        await clients["optimization"].emit(t.OPTIMIZATION_TARGETS, self.targets())
        await clients["optimization"].emit(t.OPTIMIZATION_INPUTS, self.inputs())
        await clients["portfolio"].emit(t.PORTFOLIO_SUMMARY, self.summary())


def evaluator_speed(world: World, max_sequences: int, loop_sample: int) -> dict[str, float]:
    from nodes.coordinator import cycle

    actions = world.actions()
    seqs = search.sequences(actions, {"USD": world.cash}, search.Settings(max_sequences=max_sequences))
    problem, _ = cycle.problem(
        "bench",
        world.summary(),
        world.targets(),
        world.inputs(),
        actions,
        world.closes,
        FX,
        dict(objective.DEFAULT_WEIGHTS),
        search.space("bench", actions, {"USD": world.cash}),
    )
    arrays = objective.arrays(problem)
    objective.score_rows(arrays, seqs[:100])  # warm-up
    vec = min(_timed(objective.score_rows, arrays, seqs) for _ in range(5))
    sample = search.rows(seqs[:loop_sample])
    loop = _timed(objective.score_loop, arrays, sample) * len(seqs) / len(sample)
    check = np.array(objective.score_loop(arrays, sample[:200]))
    assert np.allclose(objective.score_batch(arrays, seqs[:200])[0], check)
    return {
        "sequences": len(seqs),
        "actions": len(actions),
        "symbols": len(problem.symbols),
        "vectorised_s": vec,
        "loop_s": loop,
    }


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


class Cluster:
    """A broker and the planner's nodes as real processes."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.broker = DevBroker(tmp / "run").start()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, instance: int | None = None) -> None:
        ident = name if instance is None else f"{name}_{instance}"
        env = {
            **os.environ,
            **self.broker.settings(name).to_env(),
            "EDGE_STATE_DIR": str(self.tmp / "state"),
            "PYTHONPATH": str(ROOT),
            **ENV,
        }
        if instance is not None:
            env["EDGE_INSTANCE"] = str(instance)
        self.procs[ident] = subprocess.Popen(
            [sys.executable, "-m", "edge.run", name],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, ident: str) -> None:
        p = self.procs.pop(ident)
        p.terminate()
        p.wait(15)

    def close(self) -> None:
        for ident in list(self.procs):
            self.stop(ident)
        self.broker.stop()


async def _wait_online(client: Client, idents: list[str]) -> None:
    from schemas.runtime import NodeStatus

    online: set[str] = set()
    done = asyncio.Event()

    def seen(msg) -> None:
        s = NodeStatus.model_validate_json(msg.payload)
        if s.state == "online":
            online.add(s.node)
        if online >= set(idents):
            done.set()

    for ident in idents:
        await client.subscribe(client.topics.status(ident), seen)
    async with asyncio.timeout(60):
        await done.wait()


async def cycles(tmp: Path, worlds: dict[str, World], rounds: int, deep: CycleRequest) -> dict[str, list[float]]:
    cluster = Cluster(tmp)
    out: dict[str, list[float]] = {}
    try:
        for name in ("opportunity", "generator", "coordinator", "planning"):
            cluster.start(name)
        cluster.start("evaluator", 1)
        async with Client(cluster.broker.settings("operator"), name="bench-planner") as op:
            owners = {
                n: Client(cluster.broker.settings(n), name=f"bench-{n}")
                for n in ("universe", "scoring", "optimization", "portfolio")
            }
            for c in owners.values():
                await c.connect()
            await _wait_online(op, ["opportunity", "generator", "coordinator", "planning", "evaluator_1"])

            async def one(label: str, world: World, request: CycleRequest) -> None:
                await world.publish(owners)
                await asyncio.sleep(0.5)  # the retained states reach the nodes
                start = time.perf_counter()
                r: CycleResult = await op.call(t.COORDINATOR_CYCLE, request, timeout=300)
                wall = time.perf_counter() - start
                assert r.evaluation is not None, r.notes
                out.setdefault(f"{label}_s", []).append(wall)
                out.setdefault(f"{label}_sequences", []).append(r.evaluation.sequences)
                out.setdefault(f"{label}_exhaustive", []).append(r.evaluation.exhaustive)
                out.setdefault(f"{label}_eval_s", []).append(r.evaluation.evaluation_seconds)
                out.setdefault(f"{label}_score", []).append(r.evaluation.score)

            for _ in range(rounds):
                await one("bundled", worlds["bundled"], CycleRequest())
                await one("s200", worlds["s200"], CycleRequest())
            for i in range(rounds):  # 1 and 2 workers, alternately
                for workers in (1, 2) if i % 2 == 0 else (2, 1):
                    if workers == 2 and "evaluator_2" not in cluster.procs:
                        cluster.start("evaluator", 2)
                        await _wait_online(op, ["evaluator_2"])
                    if workers == 1 and "evaluator_2" in cluster.procs:
                        cluster.stop("evaluator_2")
                        await asyncio.sleep(0.5)
                    await one(f"deep_w{workers}", worlds["s200"], deep)
            for c in owners.values():
                await c.close()
    finally:
        cluster.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sequences", type=int, default=20000, help="sequences for the evaluator against its loop")
    ap.add_argument("--depth", type=int, default=6, help="the deep search's longest sequence")
    ap.add_argument("--beam", type=int, default=200000, help="the deep search's beam")
    ap.add_argument("--batch", type=int, default=40000, help="the deep search's sequences per batch, about")
    a = ap.parse_args()
    rounds, loop_sample = (1, 1000) if a.quick else (3, 3000)
    prices = bundle.frame()
    big, _ = synthetic(prices.drop(columns=["SPY.US"]), prices["SPY.US"], 200, years=5)
    worlds = {"bundled": World(prices, held=6, cash=D(20000)), "s200": World(big, held=30, cash=D(100000))}
    speed = evaluator_speed(worlds["s200"], a.sequences, loop_sample)
    deep = CycleRequest(beam_width=a.beam, max_actions=a.depth, batch_size=a.batch)
    with tempfile.TemporaryDirectory(prefix="edge-bench-planner-") as tmp:
        times = asyncio.run(cycles(Path(tmp), worlds, rounds, deep))
    med = {k: statistics.median(v) for k, v in times.items() if not k.endswith("_exhaustive")}
    assert len(set(times["deep_w1_score"] + times["deep_w2_score"])) == 1, "1 and 2 workers chose differently"
    speedup = speed["loop_s"] / speed["vectorised_s"]
    per_s = speed["sequences"] / speed["vectorised_s"]
    two = med["deep_w1_s"] / med["deep_w2_s"]
    two_eval = med["deep_w1_eval_s"] / med["deep_w2_eval_s"]
    print(
        f"evaluator, {speed['sequences']} sequences of {speed['actions']} candidate actions over "
        f"{speed['symbols']} securities:"
    )
    print(
        f"  vectorised {speed['vectorised_s'] * 1000:8.1f} ms   loop {speed['loop_s']:7.2f} s   "
        f"speedup {speedup:6.0f}x   {per_s:,.0f} sequences/s"
    )
    print(f"{'planning cycle (through the broker)':44} {'median s':>9} {'search s':>9} {'sequences':>10} exhaustive")
    for label, key in (
        ("bundled universe, 1 worker", "bundled"),
        ("synthetic 200 securities, 1 worker", "s200"),
        (f"deep search ({a.depth} actions, beam {a.beam:,}), 1 worker", "deep_w1"),
        (f"deep search ({a.depth} actions, beam {a.beam:,}), 2 workers", "deep_w2"),
    ):
        print(
            f"{label:44} {med[key + '_s']:9.3f} {med[key + '_eval_s']:9.3f} {int(med[key + '_sequences']):10d} "
            f"{'yes' if all(times[key + '_exhaustive']) else 'no'}"
        )
    print(
        f"two workers: {two:.2f}x the speed of one for the deep cycle, {two_eval:.2f}x for its search "
        f"({rounds} round(s) each, alternately; the same plan from both)"
    )
    print(
        json.dumps(
            {
                "evaluator_speedup_vs_loop": round(speedup, 1),
                "sequences_per_s": round(per_s),
                "evaluator_sequences": speed["sequences"],
                "cycle_s_bundled": round(med["bundled_s"], 3),
                "sequences_bundled": int(med["bundled_sequences"]),
                "cycle_s_200": round(med["s200_s"], 3),
                "sequences_200": int(med["s200_sequences"]),
                "cycle_s_deep": round(med["deep_w1_s"], 3),
                "cycle_s_deep_two_workers": round(med["deep_w2_s"], 3),
                "sequences_deep": int(med["deep_w1_sequences"]),
                "two_worker_speedup": round(two, 3),
                "two_worker_speedup_search": round(two_eval, 3),
                "rounds": rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
