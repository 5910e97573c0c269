"""The replay's speed: months per second through the nodes, against the same decision code
in one process, and where each one's time goes.

`python bench/replay.py [--from 2005-01] [--to 2024-11] [--quick]` (quick: 2019-01..2019-06)
runs, over the monthly steps of the window (`replay.calendar.steps`: each month's first
trading day):

Both run as a USD investor (`USD`: env `driver.ENV` with a USD base, USD deposits and a
static EUR rate, the replay's settings before it became a European investor's): the
in-process loop replicates the nodes' decisions in one currency, it places no exchange.
Currency pairs (`EURUSD_T0.ITS`) are never securities to it: not scored, optimised or
bought; where the universe quotes one, the in-process decisions value with its close as the
opportunity, coordinator and trading nodes do (`Rates.quoted`), and fill with the fixed
rates as the paper broker does.

1. **through the nodes**: `replay.driver` as `edge replay` runs it (env `USD`):
   Mosquitto and every decision node a real process (`driver.system`), the market clock
   moved step by step (`driver.drive`). Start-up (from the broker's start to every node's
   `online`) is timed apart from the drive, so months per second is given with and without
   it. Where the time goes comes from the ledger's per-step `timings` (`clock`,
   `scores_and_targets`, `deposit`, `cycle_and_orders`, `account`): each phase's sum over
   the steps and its share of the steps' time, and the p50/p95 step time. Each process's
   CPU seconds over the drive (`/proc/<pid>/task/*/schedstat`) say which node did the
   work, its `VmHWM` just before the system stops its peak RSS (each with its child
   processes alive then: scoring's and optimisation's children do their work).
2. **in-process**: the same decision functions in this process, no broker, no messages,
   no SQLite. Per step, as the nodes ask for them: each symbol's last `HISTORY_DAYS`
   (scoring) or `lookback + 1` (optimisation) closes up to the day, from
   `bundle.frame()`, into a frame as `nodes.history.closes` builds it;
   `scoring.model.score_universe`; `optimization.model.optimize` (and the covariance
   encoded as the optimisation node publishes it); `opportunity.model.candidates` with
   the reversal memory kept in a dict; `generator.searchspace.space`, `cycle.problem`
   and the coordinator's `Beam`, whose batches are answered here by the evaluator's own
   steps (`matrix.decode_rows`, `search.expand`, `objective.score_rows`,
   `answer.answer`: what `nodes/evaluator/job.py` does with a `Batch`), then
   `Beam.verdict` and `cycle.explained`; the chosen actions in their order through
   `trading.limits.check` and filled at the day's close moved 0.1 % against the trader
   with the fee schedule's fee (as `nodes/brokers/paper.py`); deposits of 10,000 at the
   first step and 500 at each later one (`USD`'s plan).

It makes the nodes' decisions, not just their kind of work: the same inputs reach the same
functions, so the targets, candidates and plans agree step by step unless the nodes'
messages lose something on the way (a float through JSON, a Decimal's places); the table
says in how many steps the trades agree and how far apart the final values are (2005-01..
2024-11: the same 711 trades in all 239 steps, the same final value to the cent). What it
leaves out is everything that is not a decision: the universe's SQLite and its history
requests, JSON and pydantic validation of every message (the batches and results are
built with `model_construct`), the planning and trading nodes' stores and the paper
account's transactions, the portfolio's valuation store.

Reading it: `nodes_vs_inprocess` is the nodes' time per month over the in-process one,
the price of the messaging and the processes (above 1: the nodes are slower). The nodes'
`scores_and_targets` phase is scoring and optimisation in two processes at once (each
fetching its prices from the universe); `cycle_and_orders` is candidates, search and the
orders through planning, trading and the paper broker: compare them with the in-process
scoring + optimisation and candidates + search + fills. Each phase's time per month in
each fifth of the window shows what grows with the replay's own history (what a node keeps
and reads again) rather than with the universe. `target_met`: 2005-01..2024-11
monthly (239 steps) through the nodes at the measured rate takes under 120 s (a
projection from a shorter window; measured for the default window).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/replay.py` puts bench/, not the checkout, on the path
    sys.path.insert(0, str(REPO))

from nodes import matrix  # noqa: E402
from nodes.coordinator import cycle  # noqa: E402
from nodes.coordinator.beam import Beam  # noqa: E402
from nodes.coordinator.settings import Settings as CoordinatorSettings  # noqa: E402
from nodes.evaluator import answer, objective  # noqa: E402
from nodes.generator import search, searchspace  # noqa: E402
from nodes.money import pairs  # noqa: E402
from nodes.money.fees import FeeSchedule  # noqa: E402
from nodes.money.fx import Rates  # noqa: E402
from nodes.opportunity import model as opportunity  # noqa: E402
from nodes.opportunity.memory import LastTrade  # noqa: E402
from nodes.optimization import model as optimization  # noqa: E402
from nodes.optimization.settings import Settings as OptimizationSettings  # noqa: E402
from nodes.portfolio.settings import amount  # noqa: E402
from nodes.scoring import model as scoring  # noqa: E402
from nodes.scoring.settings import Settings as ScoringSettings  # noqa: E402
from nodes.trading import limits  # noqa: E402
from nodes.universe import bundle  # noqa: E402
from replay import calendar, driver  # noqa: E402
from replay.ledger import Step  # noqa: E402
from schemas.optimization import Inputs, Target, Targets  # noqa: E402
from schemas.planning import Action, Batch, BatchResult, Problem  # noqa: E402
from schemas.portfolio import CashBalance, Holding, Summary  # noqa: E402
from schemas.trading import PlaceOrder  # noqa: E402
from schemas.universe import Security  # noqa: E402

FULL = ("2005-01", "2024-11")  # the window of the target
QUICK = ("2019-01", "2019-06")
TARGET_S = 120.0  # 2005-2024 monthly through the nodes in under two minutes
NODE_PHASES = ("clock", "scores_and_targets", "deposit", "cycle_and_orders", "account")
INPROCESS_PHASES = ("scoring", "optimisation", "candidates", "search", "fills")
PRICE = Decimal("0.000001")  # the paper broker's fill price places
# The replay as a USD investor (driver.ENV's is a European one, whose exchanges the in-process
# loop does not replicate): USD base and deposits, the static EUR rate of `nodes.money.fx`.
USD = {
    "BASE_CURRENCY": "USD",
    "FX_RATES": "EUR=1.0562",  # the ECB reference rate of 2024-11-29 (nodes.money.fx's static default)
    "PORTFOLIO_FIRST_DEPOSIT": "10000 USD",
    "PORTFOLIO_MONTHLY_DEPOSIT": "500 USD",
}


# -- through the nodes ---------------------------------------------------------------------------
@dataclass
class NodesRun:
    steps: list[Step]
    startup_s: float  # broker start to every node online
    drive_s: float  # the steps, from the first clock move to the last account
    stop_s: float
    cpu_s: dict[str, float]  # per process with its children (`family`), over the drive
    peak_rss_mb: dict[str, float]  # per process with its children, VmHWM just before the stop


def proc_status_mb(pid: int, key: str) -> float:
    """A `/proc/<pid>/status` size (VmHWM, VmRSS) in MB; 0 when the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def family(pid: int) -> list[int]:
    """A process and its children, theirs too (a node's child process: `nodes/child.py`;
    each thread lists the children it started)."""
    kids: list[str] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                kids += (task / "children").read_text().split()
    return [pid, *(p for k in kids for p in family(int(k)))]


def cpu_s(pid: int) -> float:
    """CPU seconds of a process, all its live threads (schedstat: nanoseconds)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                total += int((task / "schedstat").read_text().split()[0])
    except OSError:
        return 0.0
    return total / 1e9


def through_nodes(days: list[date], end: date, env: dict[str, str], progress: driver.Progress) -> NodesRun:
    """`driver.replay`, with the start-up, the drive and the stop timed apart and each
    process's CPU and peak RSS read from /proc."""
    ledger = driver.new_ledger(days[0], end, env)
    with driver.system(env) as system:
        began = time.perf_counter()
        operator = system.start()
        startup_s = time.perf_counter() - began
        assert system.launcher is not None and system.launcher.broker is not None
        pids = {c.name: c.proc.pid for c in system.launcher.children if c.proc is not None}
        if system.launcher.broker.proc is not None:
            pids["mosquitto"] = system.launcher.broker.proc.pid
        cpu0 = {p: cpu_s(p) for pid in pids.values() for p in family(pid)}
        began = time.perf_counter()
        asyncio.run(driver.drive(operator, days, system, ledger, progress))
        drive_s = time.perf_counter() - began
        used = {name: sum(cpu_s(p) - cpu0.get(p, 0.0) for p in family(pid)) for name, pid in pids.items()}
        peak = {name: sum(proc_status_mb(p, "VmHWM") for p in family(pid)) for name, pid in pids.items()}
        began = time.perf_counter()
    stop_s = time.perf_counter() - began
    return NodesRun(ledger.steps, startup_s, drive_s, stop_s, used, peak)


# -- in-process --------------------------------------------------------------------------------
@dataclass
class Made:
    """One in-process step: what it decided and how long each phase took."""

    day: date
    trades: list[tuple[str, str, Decimal]]  # symbol, side, quantity (filled)
    value_base: Decimal
    targets: dict[str, float]
    timings: dict[str, float]
    seconds: float


@dataclass
class Prices:
    """Each symbol's closes (its listed days only, as the universe stores them), for the
    last `n` closes up to a day and the day's quote."""

    days: dict[str, np.ndarray]  # datetime64[ns], ascending
    closes: dict[str, np.ndarray]  # float64

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Prices:
        days, closes = {}, {}
        for symbol in frame.columns:
            s = frame[symbol].dropna()
            days[symbol], closes[symbol] = s.index.to_numpy(), s.to_numpy(dtype="float64")
        return cls(days, closes)

    def _end(self, symbol: str, day: date) -> int:
        return int(np.searchsorted(self.days[symbol], np.datetime64(day, "ns"), side="right"))

    def window(self, symbols: list[str], day: date, n: int) -> pd.DataFrame:
        """Dates x symbols, each symbol's last `n` closes up to `day` (`nodes.history.closes`)."""
        series = {}
        for symbol in symbols:
            i = self._end(symbol, day)
            lo = max(i - n, 0)
            series[symbol] = pd.Series(
                self.closes[symbol][lo:i], index=pd.DatetimeIndex(self.days[symbol][lo:i]), dtype="float64"
            )
        return pd.DataFrame(series).sort_index()

    def quotes(self, symbols: list[str], day: date) -> dict[str, Decimal]:
        """The latest close up to `day` of each symbol that has one, as the universe's quotes."""
        out = {}
        for symbol in symbols:
            i = self._end(symbol, day)
            if i:
                out[symbol] = Decimal(repr(float(self.closes[symbol][i - 1])))
        return out


@dataclass
class Account:
    """The paper account and the opportunity node's memory, in this process."""

    base: str
    cash: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)
    last: dict[str, LastTrade] = field(default_factory=dict)

    def value(self, quotes: dict[str, Decimal]) -> Decimal:
        held = sum((q * quotes[s] for s, q in self.positions.items() if s in quotes), Decimal(0))
        return held + sum(self.cash.values(), Decimal(0))


class InProcess:
    """The nodes' decisions in one process (see the module doc): `step(day)` per step."""

    def __init__(self, frame: pd.DataFrame, env: dict[str, str]) -> None:
        self.prices = Prices.of(frame)
        self.securities = [Security.model_validate(s) for s in bundle.securities()]
        active = [s.symbol for s in self.securities if s.active]
        self.symbols = sorted(pairs.investable(active))  # the securities to score, optimise and own
        self.pairs = sorted(s for s in active if pairs.is_pair(s) and s in frame.columns)  # the quoted rates
        self.listings = {
            s.symbol: opportunity.Listing(s.currency, s.lot_size, s.min_trade, s.active) for s in self.securities
        }
        self.by_symbol = {s.symbol: s for s in self.securities}
        self.scoring = ScoringSettings.from_env(env)
        self.benchmark = self.scoring.benchmark
        self.opt = OptimizationSettings.from_env(env)
        self.opp = opportunity.Settings.from_env(env)
        self.coord = CoordinatorSettings.from_env(env)
        self.limits = limits.Limits.from_env(env)
        self.fees = FeeSchedule.from_env(env)
        self.fx = Rates.from_env(env)
        self.slippage = Decimal(env.get("PAPER_SLIPPAGE", "0.001"))
        first = amount(env["PORTFOLIO_FIRST_DEPOSIT"], "PORTFOLIO_FIRST_DEPOSIT")
        monthly = amount(env["PORTFOLIO_MONTHLY_DEPOSIT"], "PORTFOLIO_MONTHLY_DEPOSIT")
        self.first, self.monthly = first, monthly
        self.account = Account(self.fx.base)
        self.quoted = self.fx  # the rates of the step's day: the pairs' closes where quoted (`Rates.quoted`)
        self.cycles = 0

    def step(self, day: date) -> Made:
        timings: dict[str, float] = {}
        began = lap = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal lap
            now = time.perf_counter()
            timings[name] = now - lap
            lap = now

        acct = self.account
        deposit = self.first if self.cycles == 0 else self.monthly
        if deposit is not None:
            acct.cash[deposit[1]] = acct.cash.get(deposit[1], Decimal(0)) + deposit[0]
        self.cycles += 1
        quotes = self.prices.quotes(self.symbols, day)
        self.quoted = self.fx.quoted(self.prices.quotes(self.pairs, day))

        wanted = sorted(set(self.symbols) | {self.benchmark})
        closes = self.prices.window(wanted, day, scoring.HISTORY_DAYS)
        scored = scoring.score_universe(closes[self.symbols], closes[self.benchmark], self.scoring.weights)
        scores = {r.symbol: r.score for r in scored}
        phase("scoring")

        closes = self.prices.window(self.symbols, day, self.opt.lookback + 1)
        opt = optimization.optimize(closes, self.opt)
        weights = dict(opt.weights)
        max_weight = Decimal(repr(float(opt.max_weight))).quantize(optimization.PLACES)
        targets = Targets.model_construct(
            targets=[Target.model_construct(symbol=s, weight=w) for s, w in weights.items()], max_weight=max_weight
        )
        inputs = None
        if opt.mu is not None and opt.cov is not None:
            inputs = Inputs.model_construct(
                symbols=list(opt.mu.index), mu=[float(x) for x in opt.mu], cov_b64=matrix.encode(opt.cov.to_numpy())
            )
        phase("optimisation")

        holdings = {s: opportunity.Holding(q, self.listings[s].currency) for s, q in acct.positions.items()}
        outlook = opportunity.candidates(
            holdings,
            dict(acct.cash),
            weights,
            scores,
            self.listings,
            quotes,
            self.fees,
            self.quoted,
            self.opp,
            cap=max_weight,
            last=acct.last,
            today=day,
        )
        phase("candidates")

        chosen = self.search(f"cycle-{self.cycles}", outlook, targets, inputs, quotes) if outlook.actions else []
        phase("search")

        trades = self.fill(chosen, quotes, weights, scores, day)
        value = acct.value(quotes)
        phase("fills")
        target_floats = {s: float(w) for s, w in weights.items()}
        return Made(day, trades, value, target_floats, timings, time.perf_counter() - began)

    def summary(self, quotes: dict[str, Decimal]) -> Summary:
        """What `cycle.problem` reads of the portfolio's summary."""
        acct = self.account
        return Summary.model_construct(
            positions=[
                Holding.model_construct(
                    symbol=s, quantity=q, currency=self.listings[s].currency, price=quotes.get(s), average_price=0
                )
                for s, q in sorted(acct.positions.items())
            ],
            cash=[CashBalance.model_construct(currency=c, amount=a, amount_base=a) for c, a in acct.cash.items()],
            cash_base=sum((self.quoted.to_base(a, c) for c, a in acct.cash.items()), Decimal(0)),
        )

    def search(
        self,
        cycle_id: str,
        outlook: opportunity.Outlook,
        targets: Targets,
        inputs: Inputs | None,
        quotes: dict[str, Decimal],
    ) -> list[Action]:
        """The coordinator's cycle after the candidates: space, problem, beam, verdict; the
        plan's actions (none when nothing beats doing nothing)."""
        started = time.perf_counter()
        acct, s = self.account, self.coord
        space = searchspace.space(cycle_id, outlook.actions, dict(acct.cash))
        problem, _ = cycle.problem(
            cycle_id,
            self.summary(quotes),
            targets,
            inputs,
            outlook.actions,
            quotes,
            self.quoted,
            dict(s.weights),
            space,
            outlook.aims,
            self.opp.reserve,
            opportunity.turnover_left(self.opp, Decimal(0)),  # one cycle a day: nothing traded yet today
        )
        worker = (objective.arrays(problem), search.Space.of(problem.space))  # the evaluator's `on_problem`
        beam = Beam(
            cycle_id,
            np.asarray(space.action_rank),
            s.beam_width,
            s.max_actions,
            s.batch_size,
            s.batch_timeout_s,
            deadline=time.monotonic() + s.cycle_timeout_s,
        )
        dispatched = time.perf_counter()
        while beam.start_round() is not None:
            for batch in beam.due(time.monotonic()):
                beam.take(evaluate(batch, problem, *worker))
            beam.end_round()
        verdict = beam.verdict(
            cycle.baseline(problem),
            outlook.actions,
            time.perf_counter() - dispatched,
            time.perf_counter() - started,
        )
        verdict = cycle.explained(verdict, problem, self.fx.base)
        return list(verdict.proposal.actions) if verdict.proposal is not None else []

    def fill(
        self,
        actions: list[Action],
        quotes: dict[str, Decimal],
        weights: dict[str, Decimal],
        scores: dict[str, float | None],
        day: date,
    ) -> list[tuple[str, str, Decimal]]:
        """The plan's orders in order, through the trading node's limits, filled as the paper
        broker fills; each fill remembered as the opportunity node remembers it."""
        acct = self.account
        trades: list[tuple[str, str, Decimal]] = []
        turnover = Decimal(0)
        for a in actions:
            quote = quotes[a.symbol]
            value_at_quote = quote * a.quantity
            order = PlaceOrder(
                client_order_id=f"bench-{self.cycles}-{len(trades)}",
                symbol=a.symbol,
                side=a.side,
                quantity=a.quantity,
                currency=a.currency,
            )
            value_base = self.quoted.to_base(value_at_quote, a.currency)
            situation = limits.Situation(
                security=self.by_symbol.get(a.symbol),
                quote=quote,
                fee=self.fees.fee(value_at_quote, a.currency, self.quoted, a.symbol),
                value_base=value_base,
                base=self.fx.base,
                turnover_today=turnover,
                cash=acct.cash.get(a.currency, Decimal(0)),
                held=acct.positions.get(a.symbol, Decimal(0)),
                now=datetime.now(UTC),
            )
            if limits.check(order, situation, self.limits):
                continue  # denied: never sent
            turnover += value_base
            sign = 1 if a.side == "buy" else -1
            price = (quote * (1 + sign * self.slippage)).quantize(PRICE, ROUND_HALF_UP)
            value = price * a.quantity
            fee = self.fees.fee(value, a.currency, self.fx, a.symbol)  # the paper broker's fixed rates
            cash = acct.cash.get(a.currency, Decimal(0))
            held = acct.positions.get(a.symbol, Decimal(0))
            if a.side == "buy":
                if cash < value + fee:
                    continue  # the paper broker rejects it
                acct.cash[a.currency] = cash - value - fee
                acct.positions[a.symbol] = held + a.quantity
            else:
                if held < a.quantity:
                    continue
                acct.cash[a.currency] = cash + value - fee
                left = held - a.quantity
                if left:
                    acct.positions[a.symbol] = left
                else:
                    del acct.positions[a.symbol]
            acct.last[a.symbol] = LastTrade(a.side, day, weights.get(a.symbol), scores.get(a.symbol))
            trades.append((a.symbol, a.side, a.quantity))
        return trades


def evaluate(batch: Batch, problem: Problem, arrays: objective.Arrays, space: search.Space) -> BatchResult:
    """What `nodes/evaluator/job.py`'s `evaluate` does with a batch, without the messages:
    decode the prefixes, grow them, score them, answer with the batch's share of the beam."""
    started = time.perf_counter()
    prefixes = matrix.decode_rows(batch.rows_b64, batch.count, batch.width)
    seqs, parent = search.expand(space, prefixes)
    scores, parts = objective.score_rows(arrays, seqs)
    best, beam = answer.answer(batch, space, arrays, seqs, parent, scores, parts)
    return BatchResult.model_construct(
        cycle_id=batch.cycle_id,
        round=batch.round,
        batch=batch.batch,
        worker="bench",
        evaluated=len(seqs),
        best=best,
        beam=beam,
        seconds=time.perf_counter() - started,
    )


@dataclass
class InProcessRun:
    made: list[Made]
    setup_s: float  # the bundled prices read and split per symbol, the settings
    drive_s: float


def in_process(days: list[date], env: dict[str, str]) -> InProcessRun:
    began = time.perf_counter()
    run = InProcess(bundle.frame(pairs=True), env)
    setup_s = time.perf_counter() - began
    began = time.perf_counter()
    made = [run.step(day) for day in days]
    return InProcessRun(made, setup_s, time.perf_counter() - began)


# -- figures -----------------------------------------------------------------------------------
def pct(samples: list[float], q: float) -> float:
    data = sorted(samples)
    return data[max(0, min(len(data) - 1, math.ceil(q * len(data)) - 1))] if data else float("nan")


def phase_sums(timings: list[dict[str, float]], phases: tuple[str, ...]) -> dict[str, float]:
    return {p: sum(t.get(p, 0.0) for t in timings) for p in phases}


def fifths(timings: list[dict[str, float]], phases: tuple[str, ...]) -> dict[str, list[float]]:
    """Each phase's seconds per step in each fifth of the steps, oldest first (fewer parts
    when there are fewer than five steps)."""
    parts = [p for p in np.array_split(np.arange(len(timings)), min(5, len(timings))) if len(p)]
    return {ph: [sum(timings[i].get(ph, 0.0) for i in part) / len(part) for part in parts] for ph in phases}


@dataclass
class Agreement:
    same_trades: int  # steps whose filled trades (symbol, side, quantity) are the same
    steps: int
    nodes_trades: int
    inprocess_trades: int
    max_target_diff: float  # largest difference of a target weight over all steps
    nodes_value: float  # after the last step
    inprocess_value: float
    first_difference: date | None


def agreement(steps: list[Step], made: list[Made]) -> Agreement:
    same, first, diff = 0, None, 0.0
    for s, m in zip(steps, made, strict=True):
        mine = sorted((t.symbol, t.side, t.quantity) for t in s.trades)
        if mine == sorted(m.trades):
            same += 1
        elif first is None:
            first = s.day
        for symbol in set(s.targets) | set(m.targets):
            diff = max(diff, abs(s.targets.get(symbol, 0.0) - m.targets.get(symbol, 0.0)))
    return Agreement(
        same,
        len(steps),
        sum(len(s.trades) for s in steps),
        sum(len(m.trades) for m in made),
        diff,
        float(steps[-1].value_base) if steps else 0.0,
        float(made[-1].value_base) if made else 0.0,
        first,
    )


def report(args: argparse.Namespace, days: list[date], full_steps: int, nodes: NodesRun, inproc: InProcessRun) -> dict:
    months = len(days)
    node_sums = phase_sums([s.timings for s in nodes.steps], NODE_PHASES)
    node_total = sum(node_sums.values()) or float("nan")
    in_sums = phase_sums([m.timings for m in inproc.made], INPROCESS_PHASES)
    in_total = sum(in_sums.values()) or float("nan")
    nodes_rate = months / nodes.drive_s
    nodes_rate_startup = months / (nodes.drive_s + nodes.startup_s)
    in_rate = months / inproc.drive_s
    ratio = in_rate / nodes_rate  # time per month, nodes over in-process
    node_steps = [s.seconds for s in nodes.steps]
    in_steps = [m.seconds for m in inproc.made]
    projected = full_steps / nodes_rate
    agree = agreement(nodes.steps, inproc.made)

    def per_month(x: float) -> float:
        return x / months

    print()
    print(
        f"replay {args.start}..{args.end}, {months} monthly steps ({days[0]}..{days[-1]}); env driver.ENV + USD; "
        f"{os.cpu_count()} cores"
    )
    print()
    print(f"{'figure':<44} {'through the nodes':>18} {'in-process':>12}")
    rows: list[tuple[str, str, str]] = [
        ("months", f"{months}", f"{months}"),
        ("start-up, s (nodes: broker to every online)", f"{nodes.startup_s:.2f}", f"{inproc.setup_s:.2f}"),
        ("drive, s (the steps)", f"{nodes.drive_s:.2f}", f"{inproc.drive_s:.2f}"),
        ("stop, s", f"{nodes.stop_s:.2f}", "-"),
        ("months per second", f"{nodes_rate:.2f}", f"{in_rate:.2f}"),
        (
            "months per second with start-up",
            f"{nodes_rate_startup:.2f}",
            f"{months / (inproc.drive_s + inproc.setup_s):.2f}",
        ),
        ("s per month", f"{1 / nodes_rate:.3f}", f"{1 / in_rate:.3f}"),
        ("step p50, s", f"{pct(node_steps, 0.5):.3f}", f"{pct(in_steps, 0.5):.3f}"),
        ("step p95, s", f"{pct(node_steps, 0.95):.3f}", f"{pct(in_steps, 0.95):.3f}"),
        ("step max, s", f"{max(node_steps):.3f}", f"{max(in_steps):.3f}"),
    ]
    for name, a, b in rows:
        print(f"{name:<44} {a:>18} {b:>12}")
    print(f"nodes / in-process time per month: {ratio:.2f}x (the messaging's and the processes' price)")
    print(
        f"2005-01..2024-11 ({full_steps} steps) through the nodes at this rate: {projected:.0f} s "
        f"(target {TARGET_S:.0f} s: {'met' if projected < TARGET_S else 'not met'})"
    )
    print()
    print("where the time goes through the nodes (the ledger's timings, summed over the steps):")
    print(f"  {'phase':<22} {'s':>8} {'share':>7} {'s/month':>8}")
    for p in NODE_PHASES:
        print(f"  {p:<22} {node_sums[p]:8.2f} {node_sums[p] / node_total:7.1%} {per_month(node_sums[p]):8.3f}")
    print("in-process (this process, one phase after the other):")
    print(f"  {'phase':<22} {'s':>8} {'share':>7} {'s/month':>8}")
    for p in INPROCESS_PHASES:
        print(f"  {p:<22} {in_sums[p]:8.2f} {in_sums[p] / in_total:7.1%} {per_month(in_sums[p]):8.3f}")
    decide = in_sums["scoring"] + in_sums["optimisation"]
    plan = in_sums["candidates"] + in_sums["search"] + in_sums["fills"]
    print("the same work side by side, s per month (nodes / in-process):")
    print(
        f"  scores_and_targets {per_month(node_sums['scores_and_targets']):.3f} vs scoring + optimisation "
        f"{per_month(decide):.3f} ({node_sums['scores_and_targets'] / decide:.2f}x; two processes at once on the nodes)"
    )
    print(
        f"  cycle_and_orders   {per_month(node_sums['cycle_and_orders']):.3f} vs candidates + search + fills "
        f"{per_month(plan):.3f} ({node_sums['cycle_and_orders'] / plan:.2f}x)"
    )
    others = node_sums["clock"] + node_sums["deposit"] + node_sums["account"]
    print(f"  clock + deposit + account {per_month(others):.3f} (messages only: nothing to do in-process)")
    node_parts = fifths([s.timings for s in nodes.steps], NODE_PHASES)
    in_parts = fifths([m.timings for m in inproc.made], INPROCESS_PHASES)
    print("s per month in each fifth of the window, oldest first (a phase that grows with the history kept):")
    for p, row in [*node_parts.items(), *(("in-process " + p, row) for p, row in in_parts.items())]:
        print(f"  {p:<26} " + " ".join(f"{x:7.3f}" for x in row))
    print()
    print("the node processes over the drive (CPU: /proc schedstat; peak RSS: VmHWM before the stop):")
    print(f"  {'process':<14} {'CPU s':>8} {'CPU s/month':>12} {'peak RSS MB':>12}")
    for name in sorted(nodes.cpu_s, key=lambda n: -nodes.cpu_s[n]):
        cpu = nodes.cpu_s[name]
        print(f"  {name:<14} {cpu:8.2f} {cpu / months:12.3f} {nodes.peak_rss_mb[name]:12.1f}")
    cpu_total = sum(nodes.cpu_s.values())
    print(
        f"  {'all':<14} {cpu_total:8.2f} {cpu_total / months:12.3f} {sum(nodes.peak_rss_mb.values()):12.1f}"
        f"   (the drive's wall time: {nodes.drive_s:.2f} s; in-process CPU: {inproc.drive_s:.2f} s)"
    )
    print()
    print(
        f"decisions: the same filled trades in {agree.same_trades} of {agree.steps} steps "
        f"({agree.nodes_trades} trades through the nodes, {agree.inprocess_trades} in-process"
        + (f"; first difference {agree.first_difference}" if agree.first_difference else "")
        + f"); targets differ by at most {agree.max_target_diff:.6f}; value after the last step "
        f"{agree.nodes_value:,.2f} through the nodes, {agree.inprocess_value:,.2f} in-process"
    )

    r3 = lambda x: round(x, 3)  # noqa: E731
    figures: dict[str, Any] = {
        "months": months,
        "from": args.start,
        "to": args.end,
        "nodes_months_per_s": r3(nodes_rate),
        "nodes_months_per_s_with_startup": r3(nodes_rate_startup),
        "nodes_startup_s": r3(nodes.startup_s),
        "nodes_drive_s": r3(nodes.drive_s),
        "nodes_stop_s": r3(nodes.stop_s),
        "nodes_step_p50_s": r3(pct(node_steps, 0.5)),
        "nodes_step_p95_s": r3(pct(node_steps, 0.95)),
        **{f"nodes_share_{p}": round(node_sums[p] / node_total, 4) for p in NODE_PHASES},
        **{f"nodes_s_{p}": round(per_month(node_sums[p]), 4) for p in NODE_PHASES},
        "nodes_s_by_fifth": {p: [round(x, 4) for x in row] for p, row in node_parts.items()},
        "inprocess_s_by_fifth": {p: [round(x, 4) for x in row] for p, row in in_parts.items()},
        "nodes_cpu_s": {k: r3(v) for k, v in sorted(nodes.cpu_s.items())},
        "nodes_peak_rss_mb": {k: round(v, 1) for k, v in sorted(nodes.peak_rss_mb.items())},
        "nodes_peak_rss_total_mb": round(sum(nodes.peak_rss_mb.values()), 1),
        "inprocess_months_per_s": r3(in_rate),
        "inprocess_setup_s": r3(inproc.setup_s),
        "inprocess_drive_s": r3(inproc.drive_s),
        "inprocess_step_p50_s": r3(pct(in_steps, 0.5)),
        "inprocess_step_p95_s": r3(pct(in_steps, 0.95)),
        **{f"inprocess_s_{p}": round(per_month(in_sums[p]), 4) for p in INPROCESS_PHASES},
        "nodes_vs_inprocess": r3(ratio),
        "same_trades_steps": agree.same_trades,
        "nodes_trades": agree.nodes_trades,
        "inprocess_trades": agree.inprocess_trades,
        "max_target_diff": round(agree.max_target_diff, 6),
        "nodes_final_value": round(agree.nodes_value, 2),
        "inprocess_final_value": round(agree.inprocess_value, 2),
        "full_window_steps": full_steps,
        "projected_full_window_s": round(projected, 1),
        "target_met": projected < TARGET_S,
        "quick": args.quick,
    }
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="start", help=f"first month, YYYY-MM (default {FULL[0]}, quick {QUICK[0]})")
    p.add_argument("--to", dest="end", help=f"last month, YYYY-MM (default {FULL[1]}, quick {QUICK[1]})")
    p.add_argument("--quick", action="store_true", help=f"a short window: {QUICK[0]}..{QUICK[1]}")
    p.add_argument("--progress", action="store_true", help="a line per step on stderr")
    a = p.parse_args(argv)
    window = QUICK if a.quick else FULL
    a.start, a.end = a.start or window[0], a.end or window[1]
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = {**driver.ENV, **USD}
    trading_days = calendar.trading_days()
    first, last = calendar.month(args.start), calendar.month(args.end)
    days = calendar.steps(first, last, trading_days)
    if not days:
        print(f"bench/replay.py: no trading day from {args.start} to {args.end}", file=sys.stderr)
        return 2
    full_steps = len(calendar.steps(calendar.month(FULL[0]), calendar.month(FULL[1]), trading_days))

    def progress(step: Step) -> None:
        if args.progress:
            print(f"  nodes {step.day}: {step.seconds:.2f} s, {len(step.trades)} trades", file=sys.stderr)

    print(f"in-process, {len(days)} steps ...", file=sys.stderr)
    inproc = in_process(days, env)
    print(f"through the nodes, {len(days)} steps ...", file=sys.stderr)
    nodes = through_nodes(days, calendar.last_day(trading_days, last), env, progress)
    figures = report(args, days, full_steps, nodes, inproc)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
