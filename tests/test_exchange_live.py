"""Currency exchanges through the trading node in live mode, as a real process, against the fake
Tradernet driven through the real tradernet-sdk (`tests/test_trading_live.py` for shares): an
order on the pair `EURUSD_T0.ITS` goes through the same outbox, limits and state machine as any
order, and the fake's account moves cash between EUR and USD (`tests/fakes/tradernet_book.py`).
Every test counts the orders **at the fake**, which books an order every time it is asked."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from edge import Client
from nodes.brokers import tradernet_api
from nodes.brokers.tradernet import TradernetBroker
from schemas import catalog as t
from schemas.common import utcnow
from schemas.trading import Order, OrderRef, PlaceOrder
from schemas.universe import MarketClock, Quote, Quotes, Security, Universe
from tests.fakes import tradernet
from tests.market import CLOSES, DAY, SECURITIES
from tests.test_trading_live import ENV, path, puts, until

D = Decimal
PAIR = "EURUSD_T0.ITS"
RATE = D("1.0562")  # USD per EUR
CASH = {"USD": D(20000), "EUR": D(3000)}
PAIR_SECURITY = Security(symbol=PAIR, name="EUR/USD", currency="USD", exchange="ITS_MONEY")


@pytest.fixture
def fake():
    prices = {s: [(date(2024, 11, 29), c)] for s, c in {**CLOSES, PAIR: RATE}.items()}
    with tradernet.serve(prices) as f:
        f.cash.update(CASH)
        yield f


@pytest.fixture
async def market(connect) -> Client:
    """The universe's retained topics with the pair among the securities and its quote."""
    universe = await connect("universe")
    await universe.emit(t.UNIVERSE_SECURITIES, Universe(securities=[*SECURITIES, PAIR_SECURITY], at=utcnow()))
    await universe.emit(t.UNIVERSE_CLOCK, MarketClock(day=datetime.now(UTC).date(), source="wall", at=utcnow()))
    closes = {**CLOSES, PAIR: RATE}
    quotes = {s: Quote(symbol=s, day=DAY, close=c, currency="USD") for s, c in closes.items()}
    await universe.emit(t.UNIVERSE_QUOTES, Quotes(quotes=quotes, at=utcnow()))
    return universe


@pytest.fixture
async def operator(connect) -> Client:
    return await connect("operator")


@pytest.fixture
def start(spawn, market, fake, tmp_path) -> Callable[..., Any]:
    async def go(**env: str) -> Any:
        return await spawn("trading", "trading", state_dir=tmp_path / "state", extra_env={**fake.env(), **ENV, **env})

    return go


def exchange(side: str, qty: str, cid: str = "plan-1:1", **kw: Any) -> PlaceOrder:
    """An exchange as the planner sends it: the pair, in its quote currency, a market order."""
    return PlaceOrder(client_order_id=cid, symbol=PAIR, side=side, quantity=D(qty), currency="USD", **kw)


def account(fake: tradernet.FakeTradernet) -> tuple[dict[str, Decimal], dict[str, Any]]:
    """The cash rows and positions of getPositionJson as the live adapter reads them."""
    live = TradernetBroker(
        tradernet_api.client(tradernet_api.Credentials(tradernet.PUBLIC, tradernet.PRIVATE, fake.url))
    )
    read = live.account()
    return read.cash, read.positions


async def fee_settled(operator: Client, cid: str, timeout: float = 15) -> Order:
    """The order once its fee is the broker's commission, not the schedule's estimate."""
    deadline = time.monotonic() + timeout
    while True:
        order = await operator.call(t.TRADING_GET, OrderRef(client_order_id=cid), timeout=10)
        if not order.fee_estimated:
            return order
        assert time.monotonic() < deadline, f"{cid}: the fee is still an estimate: {order.fee}"
        await asyncio.sleep(0.1)


# -- filled: cash from one currency into the other, no position ------------------------------------------
@pytest.mark.parametrize(
    ("side", "qty", "eur", "usd", "fee"),
    [
        ("sell", "1000", D(2000), D(20000) + D("1056.20") - D("1.06"), D("1.06")),  # EUR into USD
        ("buy", "500", D(3500), D(20000) - D("528.10") - D("1.00"), D("1.00")),  # USD into EUR: the minimum fee
    ],
)
async def test_an_exchange_fills_and_moves_cash_between_the_currencies(start, fake, operator, side, qty, eur, usd, fee):
    await start()
    await operator.call(t.TRADING_ORDER, exchange(side, qty), timeout=10)
    filled = await until(operator, "plan-1:1", "filled")
    assert (filled.filled_quantity, filled.average_price, filled.currency) == (D(qty), RATE, "USD")
    assert (await fee_settled(operator, "plan-1:1")).fee == fee  # the fake's commission, in USD
    cash, positions = account(fake)
    assert cash == {"USD": usd, "EUR": eur} and positions == {}  # no position for the pair
    (row,) = fake.booked(filled.broker_ref)
    assert (row["instr"], row["oper"], row["stat"], row["cur"]) == (PAIR, 1 if side == "buy" else 3, 21, "USD")
    assert fake.count() == 1 and puts(fake) == 1


async def test_an_exchange_filled_in_parts_moves_the_cash_of_each_part(start, fake, operator):
    await start()
    fake.behaviour[PAIR] = "partial"  # half at once, the rest resting
    await operator.call(t.TRADING_ORDER, exchange("sell", "1000"), timeout=10)
    part = await until(operator, "plan-1:1", "partially_filled")
    assert part.filled_quantity == 500 and part.average_price == RATE
    assert account(fake) == ({"USD": D(20000) + D("528.10") - D("1.00"), "EUR": D(2500)}, {})
    fake.fill(fake.orders[0].id, 500, D("1.0600"))
    filled = await until(operator, "plan-1:1", "filled")
    assert filled.filled_quantity == 1000 and filled.average_price == D("1.0581")
    assert (await fee_settled(operator, "plan-1:1")).fee == D("2.00")  # one commission per execution
    assert account(fake) == ({"USD": D(20000) + D("528.10") + D("530.00") - D("2.00"), "EUR": D(2000)}, {})
    assert fake.count() == 1 and puts(fake) == 1


# -- no definite answer: never a second exchange -----------------------------------------------------------
async def test_an_exchange_booked_then_the_connection_drops_is_never_placed_twice(start, fake, operator):
    await start()
    fake.fault("putTradeOrder", "drop_after")
    first = await operator.call(t.TRADING_ORDER, exchange("sell", "1000"), timeout=10)
    assert first.status == "unknown" and "no definite answer" in first.note
    again = await operator.call(t.TRADING_ORDER, exchange("sell", "1000", reason="a caller's retry"), timeout=10)
    assert again.status in ("unknown", "filled")
    filled = await until(operator, "plan-1:1", "filled")
    assert path(filled) == ["new", "sending", "unknown", "filled"] and filled.average_price == RATE
    assert len(fake.booked(filled.broker_ref)) == 1 and fake.count() == 1 and puts(fake) == 1
    cash, positions = account(fake)
    assert cash == {"USD": D(20000) + D("1056.20") - D("1.06"), "EUR": D(2000)} and positions == {}  # moved once


# -- the fake refuses: the EUR the operator's own resting exchange holds is not there to sell ---------------
@pytest.mark.parametrize("funds_check", ["put", "later"])
async def test_an_exchange_the_account_cannot_fund_is_rejected_and_moves_nothing(start, fake, operator, funds_check):
    await start()
    fake.funds_check = funds_check  # refused at putTradeOrder, or booked and then rejected (70)
    fake.seed_order(None, PAIR, "sell", 2500, stat=10)  # another app's resting exchange holds 2,500 of the EUR
    placed = await operator.call(t.TRADING_ORDER, exchange("sell", "1000"), timeout=10)  # trading sees EUR 3,000
    rejected = await until(operator, "plan-1:1", "rejected")
    assert placed.status in ("rejected", "accepted")
    assert "Insufficient funds" in rejected.note and rejected.filled_quantity == 0, rejected.note
    assert account(fake) == (CASH, {}) and puts(fake) == 1
    assert fake.count() == (1 if funds_check == "put" else 2)  # the seeded order, and the rejected booking
    assert (await operator.call(t.TRADING_ORDER, exchange("sell", "1000"), timeout=10)).status == "rejected"
    assert puts(fake) == 1  # a refusal is final: never sent again


# -- trading's own limit: more EUR than the account holds never reaches the broker ---------------------------
async def test_selling_more_eur_than_the_account_holds_is_denied_before_the_broker(start, fake, operator):
    await start()
    denied = await operator.call(t.TRADING_ORDER, exchange("sell", "3001"), timeout=10)
    assert denied.status == "denied" and re.search(
        rf"cannot sell 3001 {re.escape(PAIR)}: 3000(\.0*)? EUR cash", denied.note
    ), denied.note
    assert fake.count() == 0 and puts(fake) == 0
    assert account(fake) == (CASH, {})


async def test_the_eur_a_resting_exchange_holds_is_not_sold_twice(start, fake, operator):
    await start()
    fake.behaviour[PAIR] = "rest"
    resting = await operator.call(t.TRADING_ORDER, exchange("sell", "2000", limit_price=D("1.07")), timeout=10)
    assert resting.status == "accepted"
    denied = await operator.call(t.TRADING_ORDER, exchange("sell", "1500", "plan-1:2"), timeout=10)
    assert denied.status == "denied" and re.search(
        rf"cannot sell 1500 {re.escape(PAIR)}: 1000(\.0*)? EUR cash", denied.note
    ), denied.note
    assert fake.count() == 1 and puts(fake) == 1
