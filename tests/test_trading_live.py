"""The trading node in live mode, as a real process on a real broker, against the fake
Tradernet driven through the real tradernet-sdk: one test per way a broker fails, each
counting the orders **at the fake**. The fake books an order every time it is asked (no
deduplication by `user_order_id`), so a second request would be a second order.

Timing (small, so that months of patience fit in seconds): polls every 0.2 s, the SDK gives
up after 1 s, the settle window is 2 s, `trading/order` answers within 3 s."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge import Client, RemoteError
from nodes.trading.outbox import PER_PREFIX, Outbox
from schemas import catalog as t
from schemas.runtime import ErrorReport
from schemas.trading import Attention, Order, OrderRef, SettleOrder
from tests.fakes import tradernet
from tests.market import CLOSES, buy

D = Decimal
ENV = {
    "EDGE_MODE": "live",
    "TRADING_ALLOW_LIVE": "yes",
    "TRADING_MARKET_HOURS": "always",
    "TRADING_POLL_S": "0.2",
    "TRADING_POLL_MAX_S": "1",
    "TRADING_SETTLE_S": "2",
    "TRADING_ANSWER_S": "3",
    "TRADERNET_TIMEOUT_S": "1",
}


@pytest.fixture
def fake():
    with tradernet.serve({s: [(date(2024, 11, 29), c)] for s, c in CLOSES.items()}) as f:
        f.cash["USD"] = D(20000)
        yield f


@pytest.fixture
async def operator(connect) -> Client:
    return await connect("operator")


@pytest.fixture
def state(tmp_path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def start(spawn, market, fake, state) -> Callable[..., Any]:
    async def go(**env: str) -> Any:
        return await spawn("trading", "trading", state_dir=state, extra_env={**fake.env(), **ENV, **env})

    return go


async def until(operator: Client, cid: str, *statuses: str, timeout: float = 15) -> Order:
    """The order once its status is one of `statuses` (asked with `trading/get`)."""
    deadline = time.monotonic() + timeout
    while True:
        order = await operator.call(t.TRADING_GET, OrderRef(client_order_id=cid), timeout=10)
        if order.status in statuses:
            return order
        assert time.monotonic() < deadline, f"{cid} is {order.status}, not {statuses}: {order.steps}"
        await asyncio.sleep(0.1)


def puts(fake: tradernet.FakeTradernet) -> int:
    """How many times putTradeOrder was asked for (refused or not)."""
    return sum(1 for cmd, _, _ in fake.calls if cmd == "putTradeOrder")


def path(order: Order) -> list[str]:
    return [s.status for s in order.steps]


# -- no definite answer: never sent again, settled from the broker's lists -------------------------------
async def test_booked_then_the_connection_drops(start, fake, operator):
    await start()
    fake.fault("putTradeOrder", "drop_after")
    first = await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    assert first.status == "unknown" and "no definite answer" in first.note
    again = await operator.call(t.TRADING_ORDER, buy(reason="a caller's retry"), timeout=10)
    assert again.status in ("unknown", "filled")
    filled = await until(operator, "plan-1:1", "filled")
    assert path(filled) == ["new", "sending", "unknown", "filled"] and filled.average_price == D("237.33")
    assert fake.count() == 1 and puts(fake) == 1


async def test_booked_after_the_client_gave_up(start, fake, operator):
    await start()
    fake.fault("putTradeOrder", "late", after_s=2.0)  # the SDK gives up after 1 s; the broker books at 2 s
    first = await operator.call(t.TRADING_ORDER, buy(), timeout=10, retries=2)
    assert first.status == "unknown"
    for _ in range(3):  # the caller retries; planning's own ctx.call retries the same id
        await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    await until(operator, "plan-1:1", "filled")
    assert fake.count() == 1 and puts(fake) == 1


async def test_killed_while_the_request_is_in_flight(start, fake, operator, state):
    node = await start()
    fake.fault("putTradeOrder", "hold", hold_s=0.8)  # booked at once, answered late
    request = asyncio.ensure_future(
        operator.request(operator.topics.command("trading", "order"), buy().model_dump_json().encode(), timeout=60)
    )
    await _wait(lambda: fake.count() == 1)
    node.kill9()
    await start()
    redelivered = Order.model_validate_json((await request).payload)  # answered by the new process
    assert redelivered.status in ("unknown", "filled")
    filled = await until(operator, "plan-1:1", "filled")
    assert "the node stopped while sending" in " ".join(s.note for s in filled.steps)
    assert fake.count() == 1 and puts(fake) == 1


async def test_booked_seconds_after_the_node_was_killed(start, fake, operator, state):
    node = await start()
    fake.fault("putTradeOrder", "late", after_s=1.5)
    request = asyncio.ensure_future(
        operator.request(operator.topics.command("trading", "order"), buy().model_dump_json().encode(), timeout=60)
    )
    await _wait(lambda: _status(state, "plan-1:1") == "sending")
    await asyncio.sleep(0.2)  # the request is at the broker
    node.kill9()
    assert fake.count() == 0  # not booked yet: the node died not knowing
    await start()
    await request
    await _wait(lambda: fake.count() == 1)  # the broker books it after all
    await until(operator, "plan-1:1", "filled")
    assert fake.count() == 1 and puts(fake) == 1


@pytest.mark.parametrize(
    ("kind", "options"),
    [("http_error", {"status": 502, "booked": True}), ("garbage", {"booked": True})],
)
async def test_a_server_error_or_garbage_after_booking(start, fake, operator, kind, options):
    await start()
    fake.fault("putTradeOrder", kind, **options)
    assert (await operator.call(t.TRADING_ORDER, buy(), timeout=10)).status == "unknown"
    await until(operator, "plan-1:1", "filled")
    assert fake.count() == 1 and puts(fake) == 1


async def test_lists_that_lag(start, fake, operator):
    await start()
    fake.list_lag_s = 1.5  # inside the settle window
    fake.fault("putTradeOrder", "drop_after")
    await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    await asyncio.sleep(0.8)
    assert (await until(operator, "plan-1:1", "unknown")).status == "unknown"  # not listed yet: still waiting
    await until(operator, "plan-1:1", "filled")
    assert fake.count() == 1 and puts(fake) == 1


@pytest.mark.parametrize("form", ["string", "apiv2", "absent"])
async def test_lists_with_our_id_in_another_form_or_none(start, fake, operator, form):
    await start()
    fake.user_order_id_format = form
    fake.fault("putTradeOrder", "drop_after")
    await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    filled = await until(operator, "plan-1:1", "filled")
    assert filled.broker_order_id == str(fake.orders[0].id)
    assert fake.count() == 1 and puts(fake) == 1


async def test_without_ids_two_lookalikes_are_never_guessed(start, fake, operator, probe):
    alerts = await probe.collect(probe.topics.error("trading"))
    await start()
    fake.user_order_id_format = "absent"
    fake.seed_order(None, "AAPL.US", "buy", 10, when=datetime.now(UTC))  # the operator's own app, just now
    fake.fault("putTradeOrder", "drop_after")
    await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    alert = ErrorReport.model_validate_json((await alerts.next(timeout=10)).payload)
    assert alert.kind == "alert" and "not guessing" in alert.reason
    order = await until(operator, "plan-1:1", "unknown")
    assert order.broker_order_id is None and fake.count() == 2 and puts(fake) == 1


async def test_orders_of_the_day_before_a_fresh_outbox_are_not_taken_for_ours(start, fake, operator, state):
    state.mkdir(parents=True)
    prefix = Outbox(state / "trading.sqlite").prefix()  # the id prefix the fresh outbox drew
    now = datetime.now(UTC)
    seeded = {
        fake.seed_order(ref, "AAPL.US", "buy", 10, when=now - timedelta(hours=2))
        for ref in (1, 2, prefix * PER_PREFIX + 1, prefix * PER_PREFIX + 2)
    }  # the old outbox's row numbers, and an earlier installation that drew the same prefix
    await start()
    fake.fault("putTradeOrder", "drop_after")  # to be found by its id in the lists
    await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    filled = await until(operator, "plan-1:1", "filled")
    assert int(filled.broker_order_id) not in seeded
    assert filled.broker_ref // PER_PREFIX != prefix  # the prefix was drawn again
    assert fake.count() == 5 and puts(fake) == 1


# -- never reached the broker: an operator settles it ------------------------------------------------
async def test_an_order_the_broker_never_got_waits_for_an_operator(start, fake, operator, probe):
    alerts = await probe.collect(probe.topics.error("trading"))
    attention = await probe.collect(probe.topics.of(t.TRADING_ATTENTION))
    await start()
    fake.fault("putTradeOrder", "drop_before")
    first = await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    assert first.status == "unknown"
    with pytest.raises(RemoteError, match="wait until"):  # within the settle window the broker may still list it
        await operator.call(t.TRADING_SETTLE, SettleOrder(client_order_id="plan-1:1", action="resend", by="ana"))
    blocked = await operator.call(t.TRADING_ORDER, buy("plan-1:2", qty="1"), timeout=10)
    assert blocked.status == "denied" and "fate is not known" in blocked.note
    other = await operator.call(t.TRADING_ORDER, buy("plan-1:3", qty="1", symbol="MA.US"), timeout=10)
    assert other.status in ("accepted", "filled")  # other securities go on
    alert = ErrorReport.model_validate_json((await alerts.until(_mentions("plan-1:1"), timeout=15)).payload)
    assert "trading/settle" in alert.reason
    listed = Attention.model_validate_json(
        (await attention.until(lambda m: b"plan-1:1" in m.payload, timeout=10)).payload
    )
    assert listed.blocked_symbols == ["AAPL.US"] and [o.client_order_id for o in listed.orders] == ["plan-1:1"]
    settled = await operator.call(
        t.TRADING_SETTLE, SettleOrder(client_order_id="plan-1:1", action="resend", by="ana", reason="not at Freedom")
    )
    assert settled.status in ("sending", "accepted", "filled")
    filled = await until(operator, "plan-1:1", "filled")
    assert any(s.cause == "resend" and s.by == "ana" for s in filled.steps)
    assert filled.broker_ref != first.broker_ref  # a new id: the first attempt may still appear
    assert fake.count(symbol="AAPL.US") == 1 and fake.count(symbol="MA.US") == 1 and puts(fake) == 3
    cleared = Attention.model_validate_json(
        (await attention.until(lambda m: Attention.model_validate_json(m.payload).orders == [], timeout=10)).payload
    )
    assert cleared.blocked_symbols == []


async def test_an_operator_abandons_an_unknown_order(start, fake, operator):
    await start()
    fake.fault("putTradeOrder", "drop_before")
    await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    await asyncio.sleep(2.2)
    abandoned = await operator.call(
        t.TRADING_SETTLE, SettleOrder(client_order_id="plan-1:1", action="abandon", by="ana")
    )
    assert abandoned.status == "abandoned" and abandoned.steps[-1].by == "ana"
    assert (await operator.call(t.TRADING_ORDER, buy("plan-1:2"), timeout=10)).status in ("accepted", "filled")
    assert fake.count() == 1 and puts(fake) == 2


# -- definite answers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (lambda f: f.fault("putTradeOrder", "refuse", text="Instrument is suspended", code=0), "suspended"),
        (lambda f: f.lots.update({"AAPL.US": 3}), "lot"),
        (lambda f: f.fault("putTradeOrder", "refuse", text="Insufficient funds", style="errMsg"), "Insufficient"),
    ],
)
async def test_a_refusal_is_final_and_never_sent_again(start, fake, operator, state, setup, says):
    node = await start()
    setup(fake)
    rejected = await operator.call(t.TRADING_ORDER, buy(), timeout=10)
    assert rejected.status == "rejected" and says in rejected.note, rejected.note
    assert (await operator.call(t.TRADING_ORDER, buy(), timeout=10)) == rejected
    node.terminate()
    await start()  # a restart sends nothing either
    assert (await operator.call(t.TRADING_ORDER, buy(), timeout=10)).status == "rejected"
    assert fake.count() == 0 and puts(fake) == 1


async def test_a_resting_order_fills_in_parts_with_the_brokers_prices_and_fee(start, fake, operator, probe):
    events = await probe.collect(probe.topics.of(t.ORDER_UPDATED))
    await start()
    fake.behaviour["MA.US"] = "rest"
    order = await operator.call(t.TRADING_ORDER, buy(qty="4", symbol="MA.US", limit_price=D("500")), timeout=10)
    assert order.status == "accepted"
    fake.fill(fake.orders[0].id, 1, D("499.5"))
    part = await until(operator, "plan-1:1", "partially_filled")
    assert part.filled_quantity == 1 and part.average_price == D("499.5")
    fake.fill(fake.orders[0].id, 3, D("498.5"))
    filled = await until(operator, "plan-1:1", "filled")
    assert filled.filled_quantity == 4 and filled.average_price == D("498.75")
    await _wait_async(operator, lambda o: not o.fee_estimated)  # the commission from the broker's cash flows
    done = await operator.call(t.TRADING_GET, OrderRef(client_order_id="plan-1:1"))
    assert done.fee == D("2.50")  # the broker's commissions: max(1.00, 0.1 %) of 499.50, then of 1,495.50
    seen = [Order.model_validate_json(m.payload).status for m in await events.quiet(1)]
    assert "partially_filled" in seen and "filled" in seen
    assert fake.count() == 1 and puts(fake) == 1


@pytest.mark.parametrize(
    ("end", "status", "filled"),
    [
        (lambda f, i: f.expire(i), "expired", 0),
        (lambda f, i: (f.fill(i, 1), f.expire(i)), "expired", 1),
        (lambda f, i: f.cancel_at_broker(i), "cancelled", 0),
        (lambda f, i: f.reject(i, "Insufficient funds"), "rejected", 0),
    ],
)
async def test_a_resting_order_ends_at_the_broker(start, fake, operator, end, status, filled):
    await start()
    fake.behaviour["MA.US"] = "rest"
    await operator.call(t.TRADING_ORDER, buy(qty="2", symbol="MA.US", limit_price=D("500")), timeout=10)
    end(fake, fake.orders[0].id)
    order = await until(operator, "plan-1:1", status)
    assert order.filled_quantity == filled
    assert fake.count() == 1 and puts(fake) == 1


async def test_an_operator_cancels_a_resting_order(start, fake, operator):
    await start()
    fake.behaviour["MA.US"] = "rest"
    await operator.call(t.TRADING_ORDER, buy(qty="2", symbol="MA.US", limit_price=D("500")), timeout=10)
    await operator.call(t.TRADING_CANCEL, OrderRef(client_order_id="plan-1:1"), timeout=10)
    assert (await until(operator, "plan-1:1", "cancelled")).filled_quantity == 0
    assert fake.count() == 1 and len(fake.accepted("delTradeOrder")) == 1


async def test_a_closed_market_fills_at_the_open(start, fake, operator):
    await start()
    fake.behaviour["AAPL.US"] = "closed"
    assert (await operator.call(t.TRADING_ORDER, buy(), timeout=10)).status == "accepted"
    await asyncio.sleep(0.5)
    assert (await operator.call(t.TRADING_GET, OrderRef(client_order_id="plan-1:1"))).status == "accepted"
    fake.open_market("AAPL.US")
    await until(operator, "plan-1:1", "filled")
    assert fake.count() == 1 and puts(fake) == 1


async def test_a_status_code_nobody_documented_keeps_the_order_open_and_is_reported_once(start, fake, operator, probe):
    alerts = await probe.collect(probe.topics.error("trading"))
    await start()
    fake.behaviour["MA.US"] = "rest"
    await operator.call(t.TRADING_ORDER, buy(qty="2", symbol="MA.US", limit_price=D("500")), timeout=10)
    with fake.lock:
        fake.orders[0].stat = 99
    alert = ErrorReport.model_validate_json((await alerts.next(timeout=10)).payload)
    assert "status 99" in alert.reason
    await asyncio.sleep(1)
    assert await alerts.quiet(0.5) == []  # once, not at every poll
    assert (await operator.call(t.TRADING_GET, OrderRef(client_order_id="plan-1:1"))).status == "accepted"
    with fake.lock:
        fake.orders[0].stat = 10
    fake.fill(fake.orders[0].id, 2)
    await until(operator, "plan-1:1", "filled")


async def test_the_caller_gets_the_current_state_within_its_timeout(start, fake, operator):
    await start(TRADING_ANSWER_S="0.3")
    fake.fault("putTradeOrder", "hold", hold_s=0.8)  # slower than the answer, within the SDK's timeout
    order = await operator.call(t.TRADING_ORDER, buy(), timeout=2)
    assert order.status == "sending"
    await until(operator, "plan-1:1", "filled")
    assert fake.count() == 1 and puts(fake) == 1


async def test_one_unreadable_order_never_holds_up_another(start, fake, operator):
    await start()
    fake.behaviour["MA.US"] = "rest"
    fake.fault("putTradeOrder", "drop_before")
    await operator.call(t.TRADING_ORDER, buy(qty="1"), timeout=10)  # unknown for good
    await operator.call(t.TRADING_ORDER, buy("plan-1:2", qty="2", symbol="MA.US", limit_price=D("500")), timeout=10)
    fake.fill(fake.orders[0].id, 2)
    await until(operator, "plan-1:2", "filled")
    assert (await operator.call(t.TRADING_GET, OrderRef(client_order_id="plan-1:1"))).status == "unknown"
    assert fake.count() == 1 and puts(fake) == 2


async def test_the_outbox_is_true_after_the_broker_is_unreachable_for_a_while(start, fake, operator):
    await start()
    fake.behaviour["MA.US"] = "rest"
    await operator.call(t.TRADING_ORDER, buy(qty="2", symbol="MA.US", limit_price=D("500")), timeout=10)
    fake.fault_always("getNotifyOrderJson", "drop_before")
    fake.fill(fake.orders[0].id, 2)
    await asyncio.sleep(1.5)
    assert (await operator.call(t.TRADING_GET, OrderRef(client_order_id="plan-1:1"))).status == "accepted"
    fake.clear_faults()
    await until(operator, "plan-1:1", "filled", timeout=10)  # the back-off is at most TRADING_POLL_MAX_S


# -- helpers -----------------------------------------------------------------------------------------------
async def _wait(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _wait_async(operator: Client, predicate: Callable[[Order], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate(await operator.call(t.TRADING_GET, OrderRef(client_order_id="plan-1:1"))):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def _status(state: Path, cid: str) -> str | None:
    with sqlite3.connect(state / "trading.sqlite", timeout=5) as db:
        row = db.execute("SELECT status FROM orders WHERE client_order_id=?", (cid,)).fetchone()
    return row[0] if row else None


def _mentions(cid: str) -> Callable[[Any], bool]:
    """An alert (not a refused command) about order `cid`."""
    return lambda m: b'"kind":"alert"' in m.payload and cid.encode() in m.payload
