"""Hypothesis drives the trading desk through orders, retries, broker faults, halts, kill -9
and restarts, against the fake Tradernet through the real tradernet-sdk and a real SQLite
outbox, and checks what must hold whatever happens:

- at most one broker order per client order id (the fake books every request it gets);
- nothing is sent while halted (no `send` step falls in a halted period);
- a finished order never changes;
- once the faults stop, every outbox order ends in the broker's state.

The desk and clerk are the node's own code (`nodes/trading/desk.py`, `clerk.py`), run here
without MQTT so that hundreds of lives fit in minutes (the node itself meets each fault, one
test each, in `test_trading_live.py`). A "kill -9" abandons the running incarnation where it
stands (its event loop never runs again; a request it had sent still reaches the fake) and
starts a new one on the same outbox file. 200 examples in `make soak`, a few in `make test`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nodes.brokers import AccountSettings, BrokerError
from nodes.brokers import tradernet_api as api
from nodes.brokers.tradernet import STATUSES, TradernetBroker
from nodes.trading.clerk import Clerk
from nodes.trading.desk import Desk, Refusal
from nodes.trading.limits import Limits
from nodes.trading.outbox import Outbox
from nodes.trading.settings import Settings
from schemas.trading import FINISHED, Attention, Order, PlaceOrder, SettleOrder
from tests.fakes import tradernet
from tests.market import CLOSES, SECURITIES

D = Decimal
SOAK = os.environ.get("HYPOTHESIS_PROFILE") == "soak"
pytestmark = pytest.mark.timeout(2400 if SOAK else 300)  # 200 lives of a second or two each in `make soak`
SETTLE = timedelta(seconds=0.4)
SDK_TIMEOUT_S = 0.25
LATE_S = 0.4  # a late booking lands after the SDK gave up
SETTINGS = Settings(
    account=AccountSettings(mode="live"),
    limits=Limits(max_order_value=D(10**6), max_daily_turnover=D(10**8), market_hours="always"),
    answer_s=2.0,
    poll_s=0.05,
    settle_after=SETTLE,
)
ORDERS = {f"o{i}": ("AAPL.US" if i % 2 else "MA.US", D(1 + i % 3)) for i in range(6)}
PUT_FAULTS = {
    "drop_after": {},
    "drop_before": {},
    "late": {"after_s": LATE_S},
    "hold": {"hold_s": 0.05},
    "http_error": {"booked": True},
    "http_error_unbooked": {"booked": False},
    "garbage": {},
    "refuse": {"text": "Instrument is suspended"},
}
FINAL = {code: evidence for code, (_, evidence) in STATUSES.items()}


class Reporter:
    def __init__(self) -> None:
        self.events: list[Order] = []
        self.alerts: list[str] = []

    async def order_changed(self, order: Order) -> None:
        self.events.append(order)

    async def alert(self, order: Order | None, text: str) -> None:
        self.alerts.append(text)

    async def attention(self, attention: Attention) -> None:
        pass


class Incarnation:
    """One life of the trading process: its own event loop, outbox connection, SDK and clerk."""

    def __init__(self, path: Path, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.outbox = Outbox(path)
        broker = TradernetBroker(
            api.client(api.Credentials(tradernet.PUBLIC, tradernet.PRIVATE, url, timeout_s=SDK_TIMEOUT_S))
        )
        self.reporter = Reporter()
        self.clerk = self.run(self._clerk(broker))
        self.desk = Desk(SETTINGS, self.outbox, self.clerk, {s.symbol: s for s in SECURITIES}, dict(CLOSES))
        self.run(self.clerk.start())

    async def _clerk(self, broker: TradernetBroker) -> Clerk:
        return Clerk(SETTINGS, self.outbox, broker, self.reporter)

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    def idle(self, seconds: float) -> None:
        """Let time pass in this life: in-flight sends finish, nothing else happens."""
        self.run(asyncio.sleep(seconds))

    def stop(self) -> None:
        """A clean stop: in-flight sends finish first."""
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        if pending:
            self.run(asyncio.wait(pending, timeout=5))
        self.clerk.close()
        self.outbox.close()
        self.loop.close()


class TradingLives(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.stack = contextlib.ExitStack()
        self.fake = self.stack.enter_context(tradernet.serve({s: [(date(2024, 11, 29), c)] for s, c in CLOSES.items()}))
        self.fake.cash["USD"] = D(10**6)
        self.dir = Path(tempfile.mkdtemp(prefix="trading-lives-"))
        self.life = Incarnation(self.dir / "trading.sqlite", self.fake.url)
        self.dead: list[Incarnation] = []
        self.halted_since: datetime | None = None
        self.halts: list[tuple[datetime, datetime]] = []
        self.finished: dict[str, tuple[str, Decimal]] = {}
        self.last_late = 0.0

    @initialize(rest=st.sets(st.sampled_from(["AAPL.US", "MA.US"])))
    def market(self, rest: set[str]) -> None:
        for symbol in rest:
            self.fake.behaviour[symbol] = "rest"

    # -- what happens ----------------------------------------------------------------------------------
    @rule(cid=st.sampled_from(sorted(ORDERS)), limit=st.booleans())
    def place(self, cid: str, limit: bool) -> None:
        symbol, qty = ORDERS[cid]
        price = CLOSES[symbol] if limit else None
        req = PlaceOrder(client_order_id=cid, symbol=symbol, side="buy", quantity=qty, currency="USD")
        if limit:
            req = req.model_copy(update={"limit_price": price})
        if self.life.outbox.get(cid) is not None:
            req = self.life.outbox.request(cid) or req  # a retry is the same order
        with contextlib.suppress(Refusal):
            self.life.run(self.life.desk.place(req))

    @rule(kind=st.sampled_from(sorted(PUT_FAULTS)))
    def broker_fault(self, kind: str) -> None:
        options = dict(PUT_FAULTS[kind])
        if kind == "late":
            self.last_late = time.monotonic()
        self.fake.fault("putTradeOrder", kind.removesuffix("_unbooked"), **options)

    @rule(lag=st.sampled_from([0.0, 0.3]), drop=st.booleans())
    def lists_misbehave(self, lag: float, drop: bool) -> None:
        self.fake.list_lag_s = lag
        if drop:
            self.fake.fault("getNotifyOrderJson", "drop_before")

    @rule(part=st.booleans())
    def the_market_moves(self, part: bool) -> None:
        with self.fake.lock:
            live = [o for o in self.fake.orders if o.stat in (10, 20)]
        for o in live:
            self.fake.fill(o.id, 1 if part and o.leaves > 1 else o.leaves)

    @rule()
    def a_day_ends(self) -> None:
        with self.fake.lock:
            live = [o.id for o in self.fake.orders if o.stat in (10, 20)]
        for order_id in live:
            self.fake.expire(order_id)

    @rule()
    def poll(self) -> None:
        with contextlib.suppress(BrokerError):
            self.life.run(self.life.clerk.poll())

    @rule(seconds=st.sampled_from([0.05, 0.3, 0.5]))
    def time_passes(self, seconds: float) -> None:
        self.life.idle(seconds)

    @rule()
    def kill_9(self) -> None:
        self.dead.append(self.life)  # never runs again; what it sent still reaches the broker
        self.life = Incarnation(self.dir / "trading.sqlite", self.fake.url)

    @rule()
    def restart(self) -> None:
        self.life.stop()
        self.life = Incarnation(self.dir / "trading.sqlite", self.fake.url)

    @rule()
    def halt(self) -> None:
        if self.halted_since is None:
            self.halted_since = datetime.now().astimezone()
        self.life.desk.set_halt(True, "stateful test")

    @rule()
    def resume(self) -> None:
        if self.halted_since is not None:
            self.halts.append((self.halted_since, datetime.now().astimezone()))
            self.halted_since = None
        self.life.desk.set_halt(False, "")

    @precondition(lambda self: time.monotonic() - self.last_late > 3 * LATE_S)
    @rule(cid=st.sampled_from(sorted(ORDERS)), resend=st.booleans())
    def operator_settles(self, cid: str, resend: bool) -> None:
        order = self.life.outbox.get(cid)
        if order is None or order.status != "unknown":
            return
        self.life.idle(SETTLE.total_seconds())
        refs = self._refs(order)
        if resend and any(self.fake.count(user_order_id=r) for r in refs):
            resend = False  # an operator who looked at the broker would see it there
        action = "resend" if resend else "abandon"
        with contextlib.suppress(Refusal):
            self.life.run(self.life.desk.settle(SettleOrder(client_order_id=cid, action=action, by="hypothesis")))

    # -- what must hold --------------------------------------------------------------------------------
    def _refs(self, order: Order) -> list[int]:
        return [r for r in [order.broker_ref, *self.life.outbox.previous_refs(order.ref)] if r is not None]

    @invariant()
    def at_most_one_broker_order_per_client_order_id(self) -> None:
        for order in self.life.outbox.list(limit=100):
            booked = sum(self.fake.count(user_order_id=r) for r in self._refs(order))
            assert booked <= 1, f"{order.client_order_id}: {booked} orders at the broker ({order.steps})"

    @invariant()
    def nothing_is_sent_while_halted(self) -> None:
        periods = [*self.halts, *([(self.halted_since, datetime.now().astimezone())] if self.halted_since else [])]
        for order in self.life.outbox.list(limit=100):
            for step in order.steps:
                if step.cause in ("send", "resend"):
                    assert not any(a <= step.at <= b for a, b in periods), f"{order.client_order_id} sent while halted"

    @invariant()
    def a_finished_order_never_changes(self) -> None:
        for order in self.life.outbox.list(limit=100):
            if order.client_order_id in self.finished:
                assert (order.status, order.filled_quantity) == self.finished[order.client_order_id], order.steps
            elif order.status in FINISHED:
                self.finished[order.client_order_id] = (order.status, order.filled_quantity)

    def teardown(self) -> None:
        try:
            self._faults_stop_and_the_outbox_agrees_with_the_broker()
        finally:
            with contextlib.suppress(Exception):
                self.life.stop()
            for life in self.dead:
                with contextlib.suppress(Exception):
                    life.clerk.close()
                    life.outbox.close()
            self.stack.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _faults_stop_and_the_outbox_agrees_with_the_broker(self) -> None:
        """Once the faults stop, polls bring every order to the broker's state (a few tries: a
        poll may still time out on a loaded machine)."""
        self.fake.clear_faults()
        self.fake.list_lag_s = 0
        self.life.idle(LATE_S + 0.2)  # late bookings land, in-flight sends finish
        disagreements: list[str] = []
        for _ in range(30):
            self.poll()
            disagreements = self._disagreements()
            if not disagreements:
                return
            self.life.idle(0.1)
        raise AssertionError("\n".join(disagreements))

    def _disagreements(self) -> list[str]:
        out = []
        for order in self.life.outbox.list(limit=100):
            at_broker = [o for r in self._refs(order) for o in self.fake.orders if o.user_order_id == r]
            if not at_broker:
                if order.status not in ("new", "denied", "rejected", "unknown", "abandoned"):
                    out.append(f"{order.client_order_id} is {order.status}, the broker has nothing: {order.steps}")
                continue
            [theirs] = at_broker
            if order.status == "abandoned":  # given up while the broker's lists did not show it
                if not any(order.client_order_id in a and "abandoned" in a for a in self.life.reporter.alerts):
                    out.append(f"{order.client_order_id} was abandoned, the broker has it, and nobody was told")
                continue
            expected = {
                "accept": {"accepted", "partially_filled"},
                "part_fill": {"partially_filled"},
                "fill": {"filled"},
                "cancel": {"cancelled"},
                "expire": {"expired"},
                "reject": {"rejected", "cancelled"},
            }[FINAL.get(theirs.stat) or "accept"]
            if (order.broker_order_id, order.filled_quantity) != (str(theirs.id), theirs.filled) or (
                order.status not in expected
            ):
                out.append(
                    f"{order.client_order_id}: {order.status} {order.filled_quantity} vs {theirs}: {order.steps}"
                )
        return out


TradingLives.TestCase.settings = settings(
    max_examples=200 if SOAK else 20, stateful_step_count=15 if SOAK else 12, deadline=None
)
test_trading_lives = TradingLives.TestCase
