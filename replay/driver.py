"""Driving a replay through the system's own nodes: each a real process on a real broker
(Mosquitto with the project's configuration, started by `edge.launcher` in a folder of
the replay's own), the same code paths as production, with a market clock the driver moves.

Per step (a trading day, normally each month's first):
1. `universe/clock` moves the clock to the day: the universe serves no price after it, and
   its `prices_changed` makes scoring and optimisation compute again on the prices up to
   the day; the portfolio's clock handler credits the month's deposit;
2. the driver waits for the day's scores and targets (retained states dated the day);
3. `coordinator/cycle` plans: candidates, search, objective, the plan proposed to planning,
   approved automatically, its orders through trading's limits to the paper broker, which
   fills at the day's close moved by its slippage, with the fee schedule's fee;
4. the account after the trades (`portfolio/sync`) and the plan's orders (`trading/orders`)
   go into the ledger (`ledger.py`).

No figure of the report comes from the driver: it records what the nodes did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from edge import Client, RemoteError
from edge.errors import CallTimeout
from edge.inventory import Placement
from edge.launcher import Launcher
from edge.settings import BrokerSettings
from nodes.money.fees import FeeSchedule
from nodes.portfolio.settings import amount
from schemas import catalog as t
from schemas.optimization import Inputs, Targets
from schemas.planning import CycleRequest, CycleResult
from schemas.portfolio import DepositCheck, Summary, SyncPortfolio
from schemas.scoring import Scores
from schemas.trading import ListOrders, Order
from schemas.universe import SetClock

from .ledger import Ledger, Refusal, Step, Trade

log = logging.getLogger("replay")

NODES = (
    "universe",
    "scoring",
    "optimization",
    "opportunity",
    "generator",
    "evaluator",
    "coordinator",
    "planning",
    "trading",
    "portfolio",
)
# What a replay changes in the nodes' settings; everything else is the nodes' own default.
ENV = {
    "EDGE_CLOCK": "replay",  # the driver moves the market clock
    "EDGE_LOG": "WARNING",
    "BASE_CURRENCY": "EUR",  # a European investor: EUR deposits, EUR figures, USD stocks bought after exchanges
    "PORTFOLIO_FIRST_DEPOSIT": "10000 EUR",
    "PORTFOLIO_MONTHLY_DEPOSIT": "500 EUR",
    "PORTFOLIO_SYNC_S": "86400",  # the driver asks for every sync it needs
    "PLANNING_AUTO_APPROVE": "1",
    "TRADING_MARKET_HOURS": "always",  # the clock's days have no hours
}
STEP_TIMEOUT_S = 300.0


@dataclass
class Watch:
    """The retained states the driver waits on, newest of each."""

    scores: Scores | None = None
    targets: Targets | None = None
    inputs: Inputs | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def ready(self, day: date) -> bool:
        return (
            self.scores is not None
            and self.scores.as_of == day
            and self.targets is not None
            and self.targets.inputs_to == day
            and self.inputs is not None
            and self.inputs.inputs_to == day
        )


@dataclass
class System:
    """The replay's broker and nodes, started and stopped as `edge up` does."""

    env: dict[str, str]
    evaluators: int = 1
    run_dir: Path | None = None
    launcher: Launcher | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> BrokerSettings:
        if self.run_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="edge-replay-")
            self.run_dir = Path(self._tmp.name)
        placements = [
            Placement(n, "replay", "replay", instance=k)
            for n in NODES
            for k in (range(1, self.evaluators + 1) if n == "evaluator" else [None])
        ]
        self.launcher = Launcher(placements, run_dir=self.run_dir, env=self.env)
        self.launcher.start_broker()
        self.launcher.start_nodes()
        assert self.launcher.broker is not None
        operator = self.launcher.broker.settings("operator")
        late = self.launcher.wait_online(operator, 120)
        if late:
            raise RuntimeError(f"replay: not online after 120 s: {', '.join(late)} (logs in {self.run_dir}/logs)")
        return operator

    def check(self) -> None:
        """Every node still runs: a replay with a node restarting under it would not be the system's."""
        assert self.launcher is not None
        dead = [c for c in self.launcher.children if not c.alive()]
        if dead:
            names = ", ".join(f"{c.name} ({c.log_path})" for c in dead)
            raise RuntimeError(f"replay: a node stopped: {names}")

    def stop(self) -> None:
        if self.launcher is not None:
            self.launcher.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


@contextlib.contextmanager
def system(env: dict[str, str], evaluators: int = 1, run_dir: Path | None = None) -> Iterator[System]:
    s = System(env, evaluators, run_dir)
    try:
        yield s
    finally:
        s.stop()


Progress = Callable[[Step], None]


async def drive(operator: BrokerSettings, days: list[date], sys_: System, ledger: Ledger, progress: Progress) -> None:
    watch = Watch()
    async with Client(operator, name="replay") as client:

        def keep(attr: str, model: type) -> Callable[..., None]:
            def on(msg: object) -> None:
                setattr(watch, attr, model.model_validate_json(msg.payload))  # type: ignore[attr-defined]
                watch.changed.set()

            return on

        await client.subscribe(client.topics.of(t.SCORES), keep("scores", Scores))
        await client.subscribe(client.topics.of(t.OPTIMIZATION_TARGETS), keep("targets", Targets))
        await client.subscribe(client.topics.of(t.OPTIMIZATION_INPUTS), keep("inputs", Inputs))
        deposited = Decimal(0)
        for day in days:
            started = time.perf_counter()
            sys_.check()
            step, deposited = await _step(client, watch, day, deposited)
            step = _timed(step, time.perf_counter() - started)
            ledger.steps.append(step)
            progress(step)


async def _step(client: Client, watch: Watch, day: date, deposited: Decimal) -> tuple[Step, Decimal]:
    timings: dict[str, float] = {}
    lap = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal lap
        now = time.perf_counter()
        timings[name] = round(now - lap, 4)
        lap = now

    await client.call(t.UNIVERSE_SET_CLOCK, SetClock(day=day), timeout=60)
    phase("clock")
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while not watch.ready(day):
                watch.changed.clear()
                await watch.changed.wait()
    except TimeoutError:
        raise RuntimeError(f"replay: {day}: no scores and targets of the day in {STEP_TIMEOUT_S:.0f} s") from None
    phase("scores_and_targets")
    await client.call(t.PORTFOLIO_DEPOSIT_CHECK, DepositCheck(), timeout=60)  # after the clock's own check
    before: Summary = await client.call(t.PORTFOLIO_SYNC, SyncPortfolio(), timeout=60)
    phase("deposit")
    notes: list[str] = []
    orders: list[Order] = []
    try:
        result: CycleResult = await client.call(t.COORDINATOR_CYCLE, CycleRequest(), timeout=STEP_TIMEOUT_S)
        notes = list(result.notes)
        if result.plan is not None:
            listed = await client.call(t.TRADING_ORDERS, ListOrders(plan_id=result.plan.plan_id, limit=500), timeout=60)
            orders = listed.orders
    except RemoteError as exc:  # the cycle refused (e.g. nothing to plan with yet): the step says why
        notes = [str(exc)]
    except CallTimeout as exc:
        raise RuntimeError(f"replay: {day}: the planning cycle did not answer ({exc})") from None
    phase("cycle_and_orders")
    after: Summary = await client.call(t.PORTFOLIO_SYNC, SyncPortfolio(), timeout=60)
    phase("account")
    assert watch.targets is not None and watch.scores is not None
    step = Step(
        day=day,
        deposits={after.base: before.deposits_base - deposited} if before.deposits_base != deposited else {},
        positions={p.symbol: p.quantity for p in after.positions},
        cash={c.currency: c.amount for c in after.cash},
        value_base=after.total_base,
        trades=[_trade(o) for o in orders if o.filled_quantity > 0],
        refusals=[Refusal(o.symbol, o.side, o.quantity, o.note) for o in orders if o.status in ("denied", "rejected")],
        targets={x.symbol: float(x.weight) for x in watch.targets.targets},
        scores={x.symbol: float(x.score) for x in watch.scores.scores if x.score is not None},
        notes=notes,
        timings=timings,
    )
    return step, before.deposits_base


def _trade(o: Order) -> Trade:
    assert o.average_price is not None
    return Trade(o.symbol, o.side, o.filled_quantity, o.average_price, o.fee, o.currency)


def _timed(step: Step, seconds: float) -> Step:
    return replace(step, seconds=round(seconds, 3))


def new_ledger(start: date, end: date, env: dict[str, str]) -> Ledger:
    fees = FeeSchedule.from_env(env)
    none = (Decimal(0), env["BASE_CURRENCY"])
    first = amount(env["PORTFOLIO_FIRST_DEPOSIT"], "PORTFOLIO_FIRST_DEPOSIT") or none
    monthly = amount(env["PORTFOLIO_MONTHLY_DEPOSIT"], "PORTFOLIO_MONTHLY_DEPOSIT") or none
    return Ledger(
        start=start,
        end=end,
        base=env["BASE_CURRENCY"],
        fee_rate=fees.rate,
        fee_fixed=fees.fixed,
        fee_currency=fees.fixed_currency,
        slippage=Decimal(env.get("PAPER_SLIPPAGE", "0.001")),
        first_deposit=first,
        monthly_deposit=monthly,
        settings=dict(env),
        fx_fee_rate=fees.fx_rate,
        fx_fee_fixed=fees.fx_fixed,
    )


def replay(days: list[date], end: date, env: dict[str, str], progress: Progress, evaluators: int = 1) -> Ledger:
    """Start the nodes, drive them over `days`, stop them; the ledger of what they did."""
    ledger = new_ledger(days[0], end, env)
    with system(env, evaluators) as s:
        operator = s.start()
        asyncio.run(drive(operator, days, s, ledger, progress))
    return ledger
