"""The trading node's order path in live mode: orders per second and the time from a fill to its event.

`python bench/trading.py [--quick]` starts the fake Tradernet (`tests/fakes/tradernet.py`,
an HTTP server on a thread of this process), a dev broker (mosquitto with the project's
dev config and catalog, on a free port), publishes the universe's retained securities and
quotes (`tests/market.py`) and starts the trading node as a real process in live mode
(`EDGE_MODE=live TRADING_ALLOW_LIVE=yes TRADING_MARKET_HOURS=always`, the limits raised
so that hundreds of orders pass, `TRADING_POLL_S` from `--poll`), which talks to the fake
through the real tradernet-sdk. Then, in this order:

1. the node's VmRSS at rest: online, a few seconds idle, no order yet;
2. fill to event: `--fills` resting limit orders (`behaviour["MA.US"] = "rest"`), then one
   at a time, after a random pause of up to one poll interval (so that the fill falls
   anywhere in the poll cycle), `fake.fill(...)` at a known time and the time until the
   node's `evt/trading/order` with status `filled` for it reaches a subscriber in this
   process. The node only learns of a fill by polling, so the expected p50 is half the
   poll interval plus one poll's work;
3. orders per second, in alternating rounds: sequential `trading/order` calls
   (`edge.Client.call`, a new client_order_id each, a market buy of 1 AAPL.US, each answered
   `accepted` or `filled`), against the adapter called directly in this process with the
   same fake (`TradernetBroker.orders(since)` + `.place(spec)`: the two broker calls the
   node makes per order to check its id and send it). Both see the same growing book of
   the day, which each list call returns whole; after a node round the run waits until
   the node has polled every order to `filled` with the broker's fee, so that its polling
   never runs into an adapter round. The figures are medians of the per-round figures.
   The node's answers carry their steps' times, which split its time per order into
   phases; the fake counts the HTTP calls per command; CPU per order comes from
   /proc/<pid>/task/*/schedstat;
4. the node's VmRSS after the run.

The last line printed is one JSON object with the figures. Every process, the broker and
the fake are stopped on exit, Ctrl-C, SIGTERM or an exception (a SIGKILL of the benchmark
too: see bench/rpc.py's watchdog).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/trading.py` puts bench/, not the checkout, on the path
    sys.path.insert(0, str(REPO))

from bench.rpc import (  # noqa: E402
    WATCHDOG,
    Child,
    Children,
    _die_with_parent,
    _prctl,
    child_env,
    cpu_s,
    pct,
    rss_mb,
    run_cleanly,
    uss_pss_mb,
)
from edge import Client  # noqa: E402
from edge.broker import DevBroker  # noqa: E402
from edge.message import Incoming  # noqa: E402
from nodes.brokers.base import OrderSpec  # noqa: E402
from nodes.brokers.tradernet import TradernetBroker  # noqa: E402
from nodes.brokers.tradernet_api import Credentials, client  # noqa: E402
from schemas import catalog as t  # noqa: E402
from schemas.runtime import NodeStatus  # noqa: E402
from schemas.trading import Order, PlaceOrder  # noqa: E402
from tests.fakes import tradernet  # noqa: E402
from tests.market import CLOSES, publish_market  # noqa: E402

D = Decimal
SYMBOL = "AAPL.US"  # the orders measured: market buys of one share (237.33 USD)
RESTING = "MA.US"  # the fill-to-event orders: limit buys at the close, resting at the fake
LIVE_ENV = {
    "EDGE_MODE": "live",
    "TRADING_ALLOW_LIVE": "yes",
    "TRADING_MARKET_HOURS": "always",
    "TRADERNET_TIMEOUT_S": "5",
    "TRADING_MAX_ORDER_VALUE": "1000000",
    "TRADING_MAX_DAILY_TURNOVER": "1000000000",
}
CASH_USD = D(10**9)
# the node's HTTP calls, in the order it makes them
COMMANDS = (
    "getStockQuotesJson",
    "getPositionJson",
    "getNotifyOrderJson",
    "getOrdersHistory",
    "putTradeOrder",
    "getUserCashFlows",
)
PHASES = (
    ("limits", "request in, the broker thread free (the last order's poll), quote + account, limits, outbox row"),
    ("id check", "orders of the day listed, broker id, `sending` written"),
    ("put", "putTradeOrder through the SDK"),
    ("answer", "`accepted` written, event, reply to the caller"),
)


# -- figures ------------------------------------------------------------------------------------
@dataclass
class Round:
    orders: int
    wall_s: float
    book: int  # orders at the fake when the round began
    cpu_ms: dict[str, float]  # per order, by process
    calls: Counter[str]  # HTTP calls at the fake, by command

    @property
    def per_s(self) -> float:
        return self.orders / self.wall_s

    @property
    def book_mid(self) -> float:
        return self.book + self.orders / 2


@dataclass
class Variant:
    label: str
    rounds: list[Round] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)  # seconds per order, by phase

    @property
    def orders(self) -> int:
        return sum(r.orders for r in self.rounds)

    def median_rate(self) -> float:
        return statistics.median(r.per_s for r in self.rounds)

    def cpu_ms(self, who: str) -> float:
        return statistics.median(r.cpu_ms.get(who, 0.0) for r in self.rounds)

    def calls(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for r in self.rounds:
            total.update(r.calls)
        return total

    def growth(self) -> tuple[float, float]:
        """ms per order at an empty book and ms more per 100 orders in it (least squares over
        the rounds, each at the book in its middle)."""
        if len(self.rounds) < 2:
            return 1000 / self.median_rate(), float("nan")
        fit = statistics.linear_regression([r.book_mid for r in self.rounds], [1000 / r.per_s for r in self.rounds])
        return fit.intercept, fit.slope * 100

    def phase_ms(self, name: str) -> float:
        return statistics.median(self.phases[name]) * 1000 if self.phases.get(name) else float("nan")


# -- the run ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short run: 3 rounds of 30 orders, 6 fills")
    p.add_argument("--rounds", type=int, help="alternating rounds (default 4, quick 3)")
    p.add_argument("--orders", type=int, help="orders per round and variant (default 80, quick 30)")
    p.add_argument("--fills", type=int, help="resting orders filled one at a time (default 20, quick 6)")
    p.add_argument("--poll", type=float, default=1.0, help="the node's TRADING_POLL_S (default 1; the node's own: 30)")
    p.add_argument("--idle-wait", type=float, help="seconds after online before the rest RSS (default 5, quick 3)")
    p.add_argument("--seed", type=int, default=1, help="of the random pauses before the fills")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) for inspection")
    a = p.parse_args(argv)
    a.rounds = a.rounds or (3 if a.quick else 4)
    a.orders = a.orders or (30 if a.quick else 80)
    a.fills = a.fills or (6 if a.quick else 20)
    a.idle_wait = a.idle_wait if a.idle_wait is not None else (3.0 if a.quick else 5.0)
    return a


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.stack = contextlib.ExitStack()
        self.broker: DevBroker | None = None
        self.children = Children(tmp)
        self.loop = asyncio.new_event_loop()
        self.clients: list[Client] = []
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.statuses: dict[str, NodeStatus] = {}
        self.events: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # client_order_id: (arrival, order)
        self.seq = 0
        self.adapter_ref = 0

    # lifecycle
    def close(self) -> None:
        for c in self.clients:
            with contextlib.suppress(BaseException):
                self.loop.run_until_complete(asyncio.wait_for(c.close(), 5))
        self.children.stop()  # the node first (it says offline), the fake still answering
        if self.watchdog is not None:  # not needed any more: stopped without letting it act
            self.watchdog.kill()
            self.watchdog.wait()
        if self.broker is not None:
            data_dir = self.broker.data_dir
            self.broker.stop()
            # as root the broker's files may live in /tmp/edge-mosquitto-*, outside our folder
            if (
                data_dir is not None
                and self.tmp not in data_dir.parents
                and data_dir.name.startswith("edge-mosquitto-")
            ):
                shutil.rmtree(data_dir, ignore_errors=True)
        self.stack.close()  # the fake's server
        with contextlib.suppress(BaseException):
            self.loop.close()

    def start(self) -> None:
        prices = {s: [(date(2024, 11, 29), c)] for s, c in CLOSES.items()}
        self.fake = self.stack.enter_context(tradernet.serve(prices))
        self.fake.cash["USD"] = CASH_USD
        self.broker = DevBroker(self.tmp / "run").start()
        assert self.broker.proc is not None
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(self.broker.proc.pid), str(self.tmp)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if _prctl is not None else None,
        )
        self.loop.run_until_complete(self.connect())
        env = {**self.fake.env(), **LIVE_ENV, "TRADING_POLL_S": f"{self.args.poll:g}"}
        self.node: Child = self.children.start(
            "trading",
            [sys.executable, "-m", "edge.run", "trading"],
            child_env(self.broker.settings("trading"), self.tmp / "state", **env),
        )
        self.adapter = self.new_adapter()

    def new_adapter(self) -> TradernetBroker:
        """The adapter on its own SDK client: a keep-alive connection of its own to the fake."""
        return TradernetBroker(client(Credentials(tradernet.PUBLIC, tradernet.PRIVATE, self.fake.url, 5.0)))

    async def connect(self) -> None:
        assert self.broker is not None
        universe = Client(self.broker.settings("universe"), name="bench-universe")
        self.clients.append(universe)
        await universe.connect()
        await publish_market(universe)  # retained, as the universe node publishes them
        self.client = Client(self.broker.settings("operator"), name="bench-trading")
        self.clients.append(self.client)
        await self.client.connect()
        await self.client.subscribe(self.client.topics.node_filter("status"), self._on_status)
        await self.client.subscribe(self.client.topics.of(t.ORDER_UPDATED), self._on_order)

    def _on_status(self, msg: Incoming) -> None:
        with contextlib.suppress(ValueError):
            status = NodeStatus.model_validate_json(msg.payload)
            self.statuses[status.node] = status

    def _on_order(self, msg: Incoming) -> None:
        at = time.monotonic()
        with contextlib.suppress(ValueError, KeyError, TypeError):
            order = json.loads(msg.payload)
            self.events.setdefault(order["client_order_id"], []).append((at, order))

    def seen(self, cid: str, status: str, *, fee_known: bool = False) -> float | None:
        """When the first event of `cid` with `status` (and the broker's fee) arrived, or None."""
        for at, order in self.events.get(cid, ()):
            if order.get("status") == status and not (fee_known and order.get("fee_estimated")):
                return at
        return None

    async def wait_for(self, what: str, done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.children.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not within {timeout:.0f} s\n{self.node.tail()}")
            await asyncio.sleep(0.01)

    # orders
    def place_order(self, cid: str, symbol: str = SYMBOL, limit: Decimal | None = None) -> Order:
        req = PlaceOrder(
            client_order_id=cid, symbol=symbol, side="buy", quantity=D(1), currency="USD", limit_price=limit
        )
        order: Order = self.loop.run_until_complete(self.client.call(t.TRADING_ORDER, req, timeout=30))
        if order.status not in ("accepted", "filled"):
            raise RuntimeError(f"order {cid} is {order.status}: {order.note}")
        return order

    def next_cid(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.seq}"

    def adapter_order(self) -> tuple[float, float]:
        """The two broker calls the node makes per order, directly: (orders s, place s)."""
        self.adapter_ref += 1  # ids 1, 2, ...: outside every prefix the node's outbox draws
        t0 = time.perf_counter()
        self.adapter.orders(datetime.now(UTC) - timedelta(days=1))
        t1 = time.perf_counter()
        seen = self.adapter.place(
            OrderSpec(
                broker_ref=self.adapter_ref,
                client_order_id=f"adapter-{self.adapter_ref}",
                symbol=SYMBOL,
                side="buy",
                quantity=D(1),
                currency="USD",
                limit_price=None,
                quote=CLOSES[SYMBOL],
            )
        )
        t2 = time.perf_counter()
        if seen.evidence != "accept":
            raise RuntimeError(f"the adapter's order was not accepted: {seen}")
        return t1 - t0, t2 - t1

    def adapter_timed(self, variant: Variant) -> None:
        orders_s, place_s = self.adapter_order()
        variant.phases.setdefault("orders", []).append(orders_s)
        variant.phases.setdefault("place", []).append(place_s)

    def measure(self, variant: Variant, n: int, one: Any) -> None:
        pids = {"node": self.node.proc.pid, "mosquitto": self.broker_pid, "bench": None}
        calls0 = Counter(cmd for cmd, _, _ in self.fake.calls)
        book = self.fake.count()
        cpu0 = {k: cpu_s(p) if p else time.process_time() for k, p in pids.items()}
        t0 = time.perf_counter()
        for _ in range(n):
            one()
        wall = time.perf_counter() - t0
        cpu = {k: ((cpu_s(p) if p else time.process_time()) - cpu0[k]) / n * 1000 for k, p in pids.items()}
        calls = Counter(cmd for cmd, _, _ in self.fake.calls) - calls0
        variant.rounds.append(Round(n, wall, book, cpu, calls))

    def node_round(self, variant: Variant, n: int) -> None:
        cids: list[str] = []

        def one() -> None:
            cid = self.next_cid("n")
            sent = time.time()
            order = self.place_order(cid)
            got = time.time()
            cids.append(cid)
            at = {s.status: s.at.timestamp() for s in order.steps}
            if {"new", "sending", "accepted"} <= at.keys():
                for name, value in zip(
                    (p for p, _ in PHASES),
                    (at["new"] - sent, at["sending"] - at["new"], at["accepted"] - at["sending"], got - at["accepted"]),
                    strict=True,
                ):
                    variant.phases.setdefault(name, []).append(value)

        self.measure(variant, n, one)
        # the polls of its last orders finish before the next round (an adapter round's figures stay its own)
        self.loop.run_until_complete(
            self.wait_for(
                "every order filled, with the broker's fee",
                lambda: all(self.seen(c, "filled", fee_known=True) for c in cids),
                60 + n * 0.5,
            )
        )
        self.loop.run_until_complete(asyncio.sleep(0.1))

    def run(self) -> dict[str, Any]:
        a = self.args
        self.start()
        assert self.broker is not None and self.broker.proc is not None
        self.broker_pid = self.broker.proc.pid

        def online() -> bool:
            status = self.statuses.get("trading")
            return status is not None and status.state == "online" and status.pid == self.node.proc.pid

        self.loop.run_until_complete(self.wait_for("the trading node online", online, 60))
        online_at = time.monotonic()
        self.loop.run_until_complete(asyncio.sleep(max(0.0, online_at + a.idle_wait - time.monotonic())))
        rest_rss = rss_mb(self.node.proc.pid)
        rest_uss, rest_pss = uss_pss_mb(self.node.proc.pid)
        print(f"trading node online, pid {self.node.proc.pid}; VmRSS at rest {rest_rss:.1f} MB", flush=True)

        # warm-up: imports, the node's one-time id check, the SDK's connections
        warm = [self.next_cid("warm") for _ in range(5)]
        for cid in warm:
            self.place_order(cid)
        for _ in range(5):
            self.adapter_order()
        self.loop.run_until_complete(
            self.wait_for(
                "warm-up orders filled", lambda: all(self.seen(c, "filled", fee_known=True) for c in warm), 60
            )
        )

        fills = self.fill_latency()
        print(
            f"fill -> event: p50 {pct(fills, 0.5):.3f} s, p95 {pct(fills, 0.95):.3f} s over {len(fills)} fills",
            flush=True,
        )

        node, adapter = Variant("node: trading/order over MQTT"), Variant("adapter: orders + place")
        print(f"{'round':>5}  {'book':>5}  {'node orders/s':>13}  {'adapter orders/s':>16}  {'node/adapter':>12}")
        for i in range(a.rounds):
            steps = [(node, lambda: self.node_round(node, a.orders)), (adapter, None)]
            if i % 2:
                steps.reverse()
            book = self.fake.count()
            for variant, step in steps:
                if step is not None:
                    step()
                else:
                    self.measure(variant, a.orders, lambda v=variant: self.adapter_timed(v))
            self.children.check()
            n, d = node.rounds[-1].per_s, adapter.rounds[-1].per_s
            print(f"{i + 1:>5}  {book:>5}  {n:13.1f}  {d:16.1f}  {n / d:12.2f}", flush=True)

        after_rss = rss_mb(self.node.proc.pid)
        return self.report(node, adapter, fills, (rest_rss, rest_uss, rest_pss), after_rss)

    def fill_latency(self) -> list[float]:
        """Resting orders, then one fill at a time at a random point of the poll cycle."""
        a = self.args
        self.fake.behaviour[RESTING] = "rest"
        resting = [
            (cid, self.place_order(cid, RESTING, CLOSES[RESTING]))
            for cid in (self.next_cid("rest") for _ in range(a.fills))
        ]
        self.fake.behaviour[RESTING] = "fill"
        rng = random.Random(a.seed)
        out = []
        for cid, order in resting:
            if order.broker_order_id is None:
                raise RuntimeError(f"resting order {cid} has no broker order id: {order}")
            self.loop.run_until_complete(asyncio.sleep(rng.uniform(0, a.poll)))
            filled_at = time.monotonic()
            self.fake.fill(int(order.broker_order_id), 1)
            self.loop.run_until_complete(
                self.wait_for(f"{cid} filled", lambda c=cid: self.seen(c, "filled") is not None, 10 + 4 * a.poll)
            )
            arrived = self.seen(cid, "filled")
            assert arrived is not None
            out.append(arrived - filled_at)
        self.loop.run_until_complete(
            self.wait_for(
                "the fills' fees", lambda: all(self.seen(c, "filled", fee_known=True) for c, _ in resting), 30
            )
        )
        return out

    def report(
        self,
        node: Variant,
        adapter: Variant,
        fills: list[float],
        rest: tuple[float, float | None, float | None],
        after_rss: float,
    ) -> dict[str, Any]:
        a = self.args
        rest_rss, rest_uss, rest_pss = rest
        rate, base = node.median_rate(), adapter.median_rate()
        ratio = rate / base
        print()
        print(
            "trading node in live mode -> tradernet-sdk -> fake Tradernet (HTTP on 127.0.0.1, a thread of this "
            f"process); mosquitto on 127.0.0.1:{self.broker.port if self.broker else '?'}"
        )
        print(
            f"{a.rounds} alternating rounds of {a.orders} orders per variant (market buys of 1 {SYMBOL}, sequential); "
            f"book of the day at the end: {self.fake.count()} orders; medians of the per-round figures"
        )
        print()
        print(f"{'':<32} {'':>6} {'':>8} {'':>8}  {'CPU ms per order':^26}  {'HTTP calls':>10}")
        print(
            f"{'variant':<32} {'orders':>6} {'orders/s':>8} {'ms/order':>8}  "
            f"{'node':>7} {'mosquitto':>9} {'bench':>8}  {'per order':>10}"
        )
        for v in (node, adapter):
            calls = sum(v.calls().values()) / v.orders
            node_cpu = f"{v.cpu_ms('node'):7.2f}" if v is node else f"{'-':>7}"
            mq_cpu = f"{v.cpu_ms('mosquitto'):9.2f}" if v is node else f"{'-':>9}"
            print(
                f"{v.label:<32} {v.orders:>6} {v.median_rate():8.1f} {1000 / v.median_rate():8.2f}  "
                f"{node_cpu} {mq_cpu} {v.cpu_ms('bench'):8.2f}  {calls:10.2f}"
            )
        print("  (bench: this process, the fake Tradernet's server, and the caller or the adapter)")
        print()
        print(f"node / adapter orders per second  {ratio:.3f}  ({1 / ratio:.2f}x the adapter's time per order)")
        (n0, nk), (a0, ak) = node.growth(), adapter.growth()
        print(
            f"time per order against the day's book (every list call returns it whole): node ~{n0:.1f} ms + "
            f"{nk:.1f} ms per 100 orders in it, adapter ~{a0:.1f} ms + {ak:.1f} ms per 100"
        )
        print()
        print("where a node order's time goes (medians, from the answer's step times; clocks of one machine):")
        for name, what in PHASES:
            print(f"  {name:<9} {node.phase_ms(name):7.2f} ms  {what}")
        print(
            f"  adapter: orders(since) {adapter.phase_ms('orders'):.2f} ms, place {adapter.phase_ms('place'):.2f} ms "
            "(medians of direct calls)"
        )
        node_calls, adapter_calls = node.calls(), adapter.calls()
        print("HTTP calls per order at the fake (the node's include its polls to `filled` and the fee):")
        for cmd in COMMANDS:
            if node_calls[cmd] or adapter_calls[cmd]:
                per_node, per_adapter = node_calls[cmd] / node.orders, adapter_calls[cmd] / adapter.orders
                print(f"  {cmd:<20} node {per_node:5.2f}   adapter {per_adapter:5.2f}")
        print()
        expected = a.poll / 2
        print(
            f"fill -> evt/trading/order filled   p50 {pct(fills, 0.5):.3f} s  p95 {pct(fills, 0.95):.3f} s  "
            f"max {max(fills):.3f} s over {len(fills)} fills"
        )
        print(
            f"  TRADING_POLL_S={a.poll:g} (the node's default is 30): the node learns of a fill at its next poll, "
            f"so the expected p50 is ~{expected:.2f} s plus one poll's work, p95 ~{0.95 * a.poll:.2f} s plus it"
        )
        print(
            f"trading node VmRSS  at rest {rest_rss:.1f} MB"
            + (f" (USS {rest_uss:.1f}, PSS {rest_pss:.1f})" if rest_uss and rest_pss else "")
            + f", after the run {after_rss:.1f} MB"
        )
        r3 = lambda x: round(x, 3)  # noqa: E731
        return {
            "orders_per_s": round(rate, 1),
            "adapter_orders_per_s": round(base, 1),
            "node_vs_adapter": r3(ratio),
            "fill_to_outbox_s": r3(pct(fills, 0.5)),
            "fill_to_outbox_p95_s": r3(pct(fills, 0.95)),
            "trading_rss_mb": round(rest_rss, 1),
            "trading_rss_after_mb": round(after_rss, 1),
            "node_ms_per_order": round(1000 / rate, 2),
            "adapter_ms_per_order": round(1000 / base, 2),
            "node_phase_ms": {name: round(node.phase_ms(name), 2) for name, _ in PHASES},
            "adapter_orders_ms": round(adapter.phase_ms("orders"), 2),
            "adapter_place_ms": round(adapter.phase_ms("place"), 2),
            "node_http_calls_per_order": round(sum(node_calls.values()) / node.orders, 2),
            "adapter_http_calls_per_order": round(sum(adapter_calls.values()) / adapter.orders, 2),
            "node_cpu_ms_per_order": r3(node.cpu_ms("node")),
            "node_ms_per_order_empty_book": round(n0, 2),
            "node_ms_per_100_booked": round(nk, 2),
            "adapter_ms_per_order_empty_book": round(a0, 2),
            "adapter_ms_per_100_booked": round(ak, 2),
            "node_orders_per_s_by_round": [round(r.per_s, 1) for r in node.rounds],
            "adapter_orders_per_s_by_round": [round(r.per_s, 1) for r in adapter.rounds],
            "node_book_by_round": [r.book for r in node.rounds],
            "book_at_end": self.fake.count(),
            "poll_s": a.poll,
            "fills": len(fills),
            "orders": node.orders,
            "rounds": a.rounds,
            "quick": a.quick,
        }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cleanly(args, lambda tmp: Bench(args, tmp), "edge-bench-trading-")


if __name__ == "__main__":
    sys.exit(main())
