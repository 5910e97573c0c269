"""The trading node on a real broker, with real SQLite files: the paper account, and the
real tradernet-sdk against the fake Tradernet API. Never the same order twice."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import Client, PublishRefused, RemoteError
from nodes.brokers import LiveRefused
from nodes.brokers.paper import PaperBroker
from nodes.trading.limits import Limits
from nodes.trading.node import node as trading
from nodes.trading.settings import Settings
from schemas import catalog as t
from schemas.trading import Halt, Halted, ListOrders, Order, OrderRef, PlaceOrder, Resume, SettleOrder
from tests.market import buy, publish_market
from tests.test_fuzz import LoopThread

D = Decimal


@pytest.fixture
def paper_env(tmp_path, monkeypatch) -> Path:
    account = tmp_path / "paper.sqlite"
    monkeypatch.setenv("PAPER_ACCOUNT", str(account))
    broker = PaperBroker(account)
    broker.deposit(D(10000), "USD")
    broker.close()
    return account


@pytest.fixture
async def operator(connect) -> Client:
    return await connect("operator")


def paper_orders(account: Path) -> list[tuple]:
    """The orders at the paper broker: (client order id, status, filled)."""
    with sqlite3.connect(account) as db:
        return db.execute("SELECT client_order_id, status, filled FROM orders ORDER BY ref").fetchall()


async def test_a_paper_order_fills_and_every_step_is_logged(run_node, market, operator, paper_env, probe):
    events = await probe.collect(probe.topics.of(t.ORDER_UPDATED))
    async with run_node(trading):
        await asyncio.sleep(0.3)
        order = await operator.call(t.TRADING_ORDER, buy(), timeout=10)
        assert order.status == "filled" and order.filled_quantity == 10 and order.mode == "paper"
        assert order.average_price == D("237.567330")  # the quote, 0.1 % against the buyer
        assert order.reference_price == D("237.33") and order.fee > 0
        assert [s.status for s in order.steps] == ["new", "sending", "filled"]
        assert [s.cause for s in order.steps] == ["write", "send", "fill"] and order.fee_estimated is False
        assert await operator.call(t.TRADING_GET, OrderRef(client_order_id="plan-1:1")) == order
        sending = Order.model_validate_json((await events.next()).payload)
        event = Order.model_validate_json((await events.next()).payload)
        assert sending.status == "sending" and sending.broker_ref == order.broker_ref
        assert event.status == "filled" and [s.status for s in event.steps] == ["new", "sending", "filled"]
    assert paper_orders(paper_env) == [("plan-1:1", "filled", "10")]


async def test_the_same_order_twice_is_one_order(run_node, market, operator, paper_env):
    async with run_node(trading):
        await asyncio.sleep(0.3)
        first = await operator.call(t.TRADING_ORDER, buy())
        again = await operator.call(t.TRADING_ORDER, buy(reason="the same plan approved again"))  # a new msg-id
        assert again == first
        with pytest.raises(RemoteError, match=r"client_order_id plan-1:1 names another order already"):
            await operator.call(t.TRADING_ORDER, buy(qty="20"))
        listed = await operator.call(t.TRADING_ORDERS, ListOrders())
        assert [o.client_order_id for o in listed.orders] == ["plan-1:1"]
    assert len(paper_orders(paper_env)) == 1
    account = PaperBroker(paper_env).account()
    assert account.positions["AAPL.US"].quantity == 10


@pytest.mark.parametrize(
    ("payload", "kind", "says"),
    [
        ({"quantity": "-5"}, "invalid", "quantity must be above 0"),
        ({"quantity": 5.0}, "invalid", "got a JSON float"),
        ({"limit_price": 237.3}, "invalid", "got a JSON float"),
        ({"currency": "usd"}, "invalid", "currency"),
        ({"symbol": "nope"}, "invalid", "symbol"),
        ({"side": "short"}, "invalid", "side"),
    ],
)
async def test_bad_orders_get_a_clear_error_and_change_nothing(
    run_node, market, operator, paper_env, payload, kind, says
):
    body = {**buy().model_dump(mode="json"), **payload}
    async with run_node(trading):
        await asyncio.sleep(0.3)
        reply = await operator.request(operator.topics.command("trading", "order"), json.dumps(body).encode())
        assert reply.user["status"] == "error"
        text = reply.payload.decode()
        assert f'"kind":"{kind}"' in text and says in text, text
        assert (await operator.call(t.TRADING_ORDERS, ListOrders())).orders == []
    assert paper_orders(paper_env) == []


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"currency": "EUR"}, "trades in USD, not EUR"),
        ({"symbol": "TSLA.US"}, "unknown symbol TSLA.US"),
        ({"quantity": "100"}, "above the maximum of 5000"),
        ({"quantity": "1000"}, "not enough cash"),
        ({"limit_price": "300"}, "from the quote"),
        ({"side": "sell"}, "cannot sell 10 AAPL.US: 0 held"),
    ],
)
async def test_our_limits_deny_an_order_which_is_kept_and_never_sent(
    run_node, market, operator, paper_env, payload, says
):
    body = PlaceOrder.model_validate({**buy().model_dump(), **payload})
    async with run_node(trading):
        await asyncio.sleep(0.3)
        denied = await operator.call(t.TRADING_ORDER, body)
        assert denied.status == "denied" and says in denied.note, denied.note
        assert [s.by for s in denied.steps] == ["trading", "limits"] and denied.broker_ref is None
        again = await operator.call(t.TRADING_ORDER, body)  # a retry: the same answer, still never sent
        assert again == denied
    assert paper_orders(paper_env) == []


async def test_a_paper_order_without_an_answer_is_found_and_never_sent_twice(
    run_node, market, operator, paper_env, monkeypatch
):
    """Paper goes through the same state machine: the paper broker books the order, the
    connection "drops", the order is `unknown` until the paper account's list shows it."""
    monkeypatch.setenv("TRADING_POLL_S", "0.2")
    paper = PaperBroker(paper_env)
    paper.inject("place", "drop_after")
    async with run_node(trading):
        await asyncio.sleep(0.3)
        assert (await operator.call(t.TRADING_ORDER, buy())).status == "unknown"
        assert (await operator.call(t.TRADING_ORDER, buy())).status in ("unknown", "filled")  # a retry
        for _ in range(100):
            order = await operator.call(t.TRADING_GET, OrderRef(client_order_id="plan-1:1"))
            if order.status == "filled":
                break
            await asyncio.sleep(0.1)
        assert [s.status for s in order.steps] == ["new", "sending", "unknown", "filled"]
    paper.close()
    assert paper_orders(paper_env) == [("plan-1:1", "filled", "10")]


async def test_open_orders_hold_their_cash_in_the_pre_checks(run_node, market, operator, paper_env):
    """An order whose fate is unknown still holds its cash: the next buy that needs the same
    money is denied instead of being sent for the broker to refuse."""
    paper = PaperBroker(paper_env)
    paper.inject("place", "drop_before")  # no answer: the first order becomes unknown
    async with run_node(trading):
        await asyncio.sleep(0.3)
        first = await operator.call(t.TRADING_ORDER, buy(qty="20"))  # 4,747 of the 10,000
        assert first.status == "unknown"
        second = await operator.call(t.TRADING_ORDER, buy("plan-1:2", qty="12", symbol="MA.US"))
        assert second.status == "denied" and "not enough cash" in second.note, second.note
    paper.close()
    assert paper_orders(paper_env) == []


@pytest.mark.parametrize(
    ("verb", "payload", "kind", "says"),
    [
        ("get", {"client_order_id": "nope"}, "refused", "no order nope"),
        ("cancel", {"client_order_id": "nope"}, "refused", "no order nope"),
        ("get", {"client_order_id": ""}, "invalid", "client_order_id"),
        ("orders", {"limit": 0}, "invalid", "limit"),
        ("orders", {"status": "lost"}, "invalid", "status"),
        ("halt", {"reason": ""}, "invalid", "reason"),
        ("halt", {}, "invalid", "reason"),
        ("resume", {"reason": 5}, "invalid", "reason"),
        ("sell_everything", {}, "unknown_verb", "sell_everything"),
    ],
)
async def test_bad_input_on_every_other_command(run_node, market, operator, paper_env, verb, payload, kind, says):
    async with run_node(trading):
        reply = await operator.request(operator.topics.command("trading", verb), json.dumps(payload).encode())
        text = reply.payload.decode()
        assert reply.user["status"] == "error" and f'"kind":"{kind}"' in text and says in text, text
        assert (await operator.call(t.TRADING_ORDERS, ListOrders())).orders == []


async def test_halt_stops_sending_and_resume_clears_it(run_node, market, operator, paper_env, probe, broker):
    flags = await probe.collect(probe.topics.of(t.TRADING_HALTED))
    async with run_node(trading):
        assert Halted.model_validate_json((await flags.next()).payload).halted is False
        halted = await operator.call(t.TRADING_HALT, Halt(reason="checking the account"))
        assert halted.halted and Halted.model_validate_json((await flags.next()).payload).halted
        with pytest.raises(RemoteError, match=r"trading is halted since .*: checking the account"):
            await operator.call(t.TRADING_ORDER, buy())
        await operator.call(t.TRADING_RESUME, Resume())
        assert (await operator.call(t.TRADING_ORDER, buy())).status == "filled"
        # and with a plain mosquitto_pub, as an operator would in a hurry
        s = broker.settings("operator")
        subprocess.run(
            [
                shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub",
                "-h",
                s.host,
                "-p",
                str(s.port),
                "-u",
                s.user,
                "-P",
                s.password,
                "-V",
                "mqttv5",
                "-q",
                "1",
                "-t",
                operator.topics.command("trading", "halt"),
                "-m",
                '{"reason": "by hand"}',
            ],
            check=True,
            timeout=10,
        )
        flag = Halted.model_validate_json(
            (await flags.until(lambda m: Halted.model_validate_json(m.payload).halted, timeout=10)).payload
        )
        assert flag.reason == "by hand"
        with pytest.raises(RemoteError, match="halted"):
            await operator.call(t.TRADING_ORDER, buy("plan-1:2"))
    async with run_node(trading):  # the flag survives a restart
        with pytest.raises(RemoteError, match="halted"):
            await operator.call(t.TRADING_ORDER, buy("plan-1:2"))


async def test_only_planning_and_the_operator_may_order(run_node, market, connect, paper_env):
    scoring = await connect("scoring")
    planning = await connect("planning")
    async with run_node(trading):
        await asyncio.sleep(0.3)
        with pytest.raises(PublishRefused, match="Not authorized"):
            await scoring.publish(scoring.topics.command("trading", "order"), buy(), qos=1)
        with pytest.raises(PublishRefused, match="Not authorized"):
            await scoring.publish(scoring.topics.command("trading", "halt"), Halt(reason="x"), qos=1)
        settle = SettleOrder(client_order_id="plan-1:1", action="resend", by="planning")
        with pytest.raises(PublishRefused, match="Not authorized"):  # only an operator settles
            await planning.publish(planning.topics.command("trading", "settle"), settle, qos=1)
        assert (await planning.call(t.TRADING_ORDER, buy())).status == "filled"
    assert [r[0] for r in paper_orders(paper_env)] == ["plan-1:1"]


async def test_research_mode_never_sends(run_node, market, operator, paper_env, monkeypatch):
    monkeypatch.setenv("EDGE_MODE", "research")
    async with run_node(trading):
        with pytest.raises(RemoteError, match="mode research: orders are never sent"):
            await operator.call(t.TRADING_ORDER, buy())
    assert paper_orders(paper_env) == []


async def test_live_refuses_to_start_without_its_switch(run_node, monkeypatch):
    monkeypatch.setenv("EDGE_MODE", "live")
    with pytest.raises(LiveRefused, match="TRADING_ALLOW_LIVE=yes"):
        async with run_node(trading):
            pass


def test_settings_from_the_environment():
    s = Settings.from_env({})
    assert (s.mode, s.stale_after.total_seconds(), s.limits) == ("paper", 3600, Limits(market_hours="always"))
    live = Settings.from_env({"EDGE_MODE": "live", "TRADING_STALE_ORDER_S": "60", "FX_RATES": "USD=0.9"})
    assert live.limits.market_hours == "exchange" and live.stale_after.total_seconds() == 60
    assert live.fx.rate("USD") == D("0.9")
    timing = Settings.from_env({"TRADING_POLL_S": "2", "TRADING_SETTLE_S": "60", "TRADING_ANSWER_S": "1"})
    assert (timing.poll_s, timing.settle_after.total_seconds(), timing.answer_s, s.poll_max_s) == (2, 60, 1, 300)
    for name, bad in (
        ("TRADING_POLL_S", "0"),
        ("TRADING_SETTLE_S", "soon"),
        ("TRADING_ANSWER_S", "-1"),
        ("TRADING_FEE_DAYS", "1.5"),
        ("TRADING_STALE_ORDER_S", "1h"),
        ("TRADING_STALE_ORDER_S", "-1"),
        ("EDGE_MODE", "Paper"),
        ("TRADING_MAX_FEE_SHARE", "-0.01"),
    ):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: bad})


# -- kill -9 between writing an order and the broker's answer -------------------------------------------
def _outbox_status(state: Path, cid: str) -> str | None:
    path = state / "trading.sqlite"
    if not path.exists():
        return None
    with sqlite3.connect(path, timeout=5) as db:
        row = db.execute("SELECT status FROM orders WHERE client_order_id=?", (cid,)).fetchone()
    return row[0] if row else None


async def _until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_paper_kill_9_after_writing_ends_with_one_order(spawn, broker, market, operator, paper_env, tmp_path):
    state = tmp_path / "state"
    env = {"PAPER_ACCOUNT": str(paper_env)}
    node = await spawn("trading", "trading", state_dir=state, extra_env=env)
    await asyncio.sleep(0.5)
    lock = sqlite3.connect(paper_env, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the paper broker cannot answer: the node waits after writing
    request = asyncio.ensure_future(
        operator.request(operator.topics.command("trading", "order"), buy().model_dump_json().encode(), timeout=60)
    )
    await _until(lambda: _outbox_status(state, "plan-1:1") == "new")
    node.kill9()
    lock.execute("ROLLBACK")
    lock.close()
    node = await spawn("trading", "trading", state_dir=state, extra_env=env)  # reconciles, then the redelivery
    # the command was never acknowledged: the broker redelivers it (QoS 1, persistent session)
    # and the first request gets its answer from the new process
    redelivered = await request
    assert redelivered.user["status"] == "ok" and Order.model_validate_json(redelivered.payload).status == "filled"
    await _until(lambda: _outbox_status(state, "plan-1:1") == "filled")
    again = await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    assert again.status == "filled" and [s.status for s in again.steps] == ["new", "sending", "filled"]
    assert paper_orders(paper_env) == [("plan-1:1", "filled", "10")]
    node.terminate()


# -- hypothesis: any payload on the order command ----------------------------------------------------------
amounts = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats(),
    st.integers(),
    st.text(max_size=8),
    st.none(),
)
order_payloads = st.fixed_dictionaries(
    {
        "client_order_id": st.sampled_from(["f-1", "f-2", "", "x" * 200, "ok:1"]),
        "symbol": st.sampled_from(["AAPL.US", "MA.US", "TSLA.US", "aapl", ""]),
        "side": st.sampled_from(["buy", "sell", "hold"]),
        "quantity": amounts,
        "currency": st.sampled_from(["USD", "EUR", "usd"]),
    },
    optional={"limit_price": amounts, "extra": st.integers()},
)


@pytest.fixture
def fuzz_trading(broker, tmp_path, paper_env):
    lt = LoopThread()
    stop, ready = asyncio.Event(), asyncio.Event()

    async def start():
        universe = Client(broker.settings("universe"), name="fuzz-universe")
        await universe.connect()
        await publish_market(universe)
        task = asyncio.ensure_future(
            trading.run(broker.settings("trading"), state_dir=tmp_path / "s", stop=stop, ready=ready)
        )
        await asyncio.wait_for(ready.wait(), 10)
        client = Client(broker.settings("operator"), name="fuzzer")
        await client.connect()
        return task, client, universe

    task, client, universe = lt.run(start())
    yield lt, client
    lt.loop.call_soon_threadsafe(stop.set)
    lt.run(asyncio.wait_for(asyncio.shield(task), 15))
    lt.run(client.close())
    lt.run(universe.close())
    lt.close()


@settings(deadline=None)
@given(body=order_payloads)
def test_any_order_payload_is_answered_and_only_valid_orders_reach_the_broker(fuzz_trading, paper_env, body):
    lt, client = fuzz_trading
    reply = lt.run(client.request(client.topics.command("trading", "order"), json.dumps(body).encode(), timeout=10))
    assert reply.user.get("status") in ("ok", "error")
    if reply.user["status"] == "ok":
        order = Order.model_validate_json(reply.payload)
        assert order.status in ("filled", "rejected", "denied")
    else:
        assert json.loads(reply.payload)["error"]
    placed = paper_orders(paper_env)
    assert len({r[0] for r in placed}) == len(placed)  # never two broker orders for one client id
    pong = lt.run(client.request(client.topics.ping("trading"), b"{}", timeout=10))
    assert pong.user.get("status") == "ok"


def test_the_trading_node_stays_free_of_heavy_libraries():
    code = (
        "import sys, nodes.trading.node; "
        "print(sorted(m for m in ('pandas', 'numpy', 'tradernet', 'pypfopt') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent
    )
    assert out.stdout.strip() == "[]"
