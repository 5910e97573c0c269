"""The broker adapters without MQTT: the paper account on a real SQLite file, the real
tradernet-sdk against the local fake of the Tradernet API, fees, FX and the limits."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from nodes.brokers import AccountSettings, LiveRefused, open_broker
from nodes.brokers import tradernet_api as api
from nodes.brokers.base import BrokerError, OrderSpec
from nodes.brokers.paper import PaperBroker
from nodes.brokers.tradernet import TradernetBroker, to_broker_order
from nodes.money.fees import FeeSchedule
from nodes.money.fx import FxError, Rates
from nodes.trading.limits import Limits, Situation, check, market_open
from schemas.trading import PlaceOrder
from schemas.universe import Security
from tests.fakes import tradernet

D = Decimal
FX = Rates()


def spec(
    ref: int, side: str = "buy", qty: str = "10", quote: str = "100", limit: str | None = None, symbol: str = "AAPL.US"
) -> OrderSpec:
    return OrderSpec(
        ref=ref,
        client_order_id=f"t-{ref}",
        symbol=symbol,
        side=side,
        quantity=D(qty),
        currency="USD",
        limit_price=None if limit is None else D(limit),
        quote=D(quote),
    )


# -- fees and FX ------------------------------------------------------------------------------------
def test_the_fee_is_fixed_plus_rate_in_the_orders_currency():
    fees = FeeSchedule()  # EUR 1.20 + 0.12 %
    assert fees.fee(D(1000), "EUR", FX) == D("2.40")
    # EUR 1.20 at 1.0565 USD per EUR is USD 1.2678; plus 0.12 % of 1000 = 1.20 -> 2.4678 -> 2.47
    assert fees.fee(D(1000), "USD", FX) == D("2.47")
    assert FeeSchedule.from_env({"TRADING_FEE_RATE": "0.002", "TRADING_FEE_FIXED": "2"}).fee(D(500), "EUR", FX) == D(3)
    for name, bad in (
        ("TRADING_FEE_RATE", "abc"),
        ("TRADING_FEE_RATE", "1"),
        ("TRADING_FEE_FIXED", "-1"),
        ("TRADING_FEE_FIXED", "NaN"),
        ("TRADING_FEE_CURRENCY", "euro"),
    ):
        with pytest.raises(ValueError, match=name):
            FeeSchedule.from_env({name: bad})


def test_fx_rates_are_configured_or_refused():
    assert FX.to_base(D("1.0565"), "USD").quantize(D("0.000001")) == D(1)
    with pytest.raises(FxError, match="no exchange rate for GBP"):
        FX.rate("GBP")
    rates = Rates.from_env({"FX_RATES": "usd=0.9, GBP=1.2"})
    assert rates.rate("USD") == D("0.9") and rates.rate("GBP") == D("1.2") and rates.source == "FX_RATES setting"
    for bad in ("USD", "USD=x", "USD=-1", "US=1"):
        with pytest.raises(FxError):
            Rates.from_env({"FX_RATES": bad})


# -- the paper account --------------------------------------------------------------------------------
@pytest.fixture
def paper(tmp_path):
    broker = PaperBroker(tmp_path / "paper.sqlite")
    broker.deposit(D(5000), "USD")
    yield broker
    broker.close()


def test_a_paper_buy_fills_at_the_quote_with_slippage_and_the_fee(paper):
    filled = paper.place(spec(1, qty="10", quote="100"))
    assert filled.status == "filled" and filled.average_price == D("100.1")  # 0.1 % against the buyer
    fee = FeeSchedule().fee(D("1001"), "USD", FX)
    assert filled.fee == fee
    account = paper.account()
    assert account.cash["USD"] == D(5000) - D("1001") - fee
    assert account.positions["AAPL.US"].quantity == 10 and account.positions["AAPL.US"].average_price == D("100.1")


def test_the_same_paper_order_twice_fills_once(paper):
    first = paper.place(spec(1))
    again = paper.place(spec(1))
    assert again == first
    assert paper.account().positions["AAPL.US"].quantity == 10


def test_paper_sells_and_refusals(paper):
    paper.place(spec(1, qty="10"))
    sold = paper.place(spec(2, side="sell", qty="4", quote="110"))
    assert sold.status == "filled" and sold.average_price == D("109.89")
    assert paper.account().positions["AAPL.US"].quantity == 6
    too_many = paper.place(spec(3, side="sell", qty="7"))
    assert too_many.status == "rejected" and "not enough shares" in too_many.note
    too_dear = paper.place(spec(4, qty="1000"))
    assert too_dear.status == "rejected" and "insufficient cash" in too_dear.note
    beyond = paper.place(spec(5, qty="1", quote="100", limit="99"))
    assert beyond.status == "cancelled" and "beyond the limit" in beyond.note
    assert paper.account().positions["AAPL.US"].quantity == 6
    assert paper.find(99) is None and paper.find(3).status == "rejected"


def test_paper_sells_everything_and_keeps_cash_per_currency(paper):
    paper.deposit(D(100), "EUR")
    paper.place(spec(1, qty="10"))
    paper.place(spec(2, side="sell", qty="10"))
    account = paper.account()
    assert "AAPL.US" not in account.positions and account.cash["EUR"] == 100
    assert [m.kind for m in paper.cash_moves()] == ["deposit", "deposit"]
    with pytest.raises(BrokerError):
        paper.deposit(D(-1), "EUR")


def test_live_needs_its_switch_and_its_keys(tmp_path):
    def live(**env: str) -> AccountSettings:
        return AccountSettings.from_env({"EDGE_MODE": "live", **env})

    with pytest.raises(LiveRefused, match="TRADING_ALLOW_LIVE=yes"):
        open_broker(live(TRADERNET_PUBLIC_KEY="p", TRADERNET_PRIVATE_KEY="k"), tmp_path)
    with pytest.raises(LiveRefused, match="TRADERNET_PUBLIC_KEY and TRADERNET_PRIVATE_KEY"):
        open_broker(live(TRADING_ALLOW_LIVE="yes"), tmp_path)
    assert open_broker(AccountSettings.from_env({}), tmp_path).name == "paper"


def test_account_settings_from_the_environment(tmp_path):
    s = AccountSettings.from_env({})
    assert (s.mode, s.paper_account, s.slippage, s.allow_live, s.tradernet) == ("paper", None, D("0.001"), False, None)
    assert s.fees == FeeSchedule() and s.fx == Rates()
    s = AccountSettings.from_env(
        {
            "EDGE_MODE": "live",
            "TRADING_ALLOW_LIVE": "yes",
            "PAPER_SLIPPAGE": "0",
            "PAPER_ACCOUNT": str(tmp_path / "a.sqlite"),
            "TRADING_FEE_RATE": "0.002",
            "TRADERNET_PUBLIC_KEY": "p",
            "TRADERNET_PRIVATE_KEY": "k",
        }
    )
    assert (s.mode, s.allow_live, s.slippage, s.fees.rate) == ("live", True, D(0), D("0.002"))
    assert s.paper_account == tmp_path / "a.sqlite" and s.tradernet is not None and s.tradernet.public == "p"
    for name, bad in (
        ("EDGE_MODE", "demo"),
        ("PAPER_SLIPPAGE", "0.1%"),
        ("PAPER_SLIPPAGE", "-0.001"),
        ("TRADING_ALLOW_LIVE", "1"),
    ):
        with pytest.raises(ValueError, match=name):
            AccountSettings.from_env({name: bad})


# -- Tradernet through the real SDK against the fake ----------------------------------------------------
CLOSES = [(datetime(2024, 11, 29).date(), D("237.33"))]


@pytest.fixture
def fake():
    with tradernet.serve({"AAPL.US": CLOSES, "MA.US": [(CLOSES[0][0], D("500"))]}) as f:
        f.cash["USD"] = D(10000)
        yield f


@pytest.fixture
def live(fake):
    return TradernetBroker(api.client(api.Credentials(tradernet.PUBLIC, tradernet.PRIVATE, fake.url)))


def test_a_tradernet_market_order_is_a_cash_order_with_our_number(fake, live):
    got = live.place(spec(7, qty="3", quote="237.33"))
    assert got.status == "filled" and got.filled_quantity == 3 and got.average_price == D("237.33")
    sent = fake.accepted("putTradeOrder")[-1]
    assert sent["user_order_id"] == 7 and sent["action_id"] == 1 and sent["order_type_id"] == 1  # not margin (2)
    assert live.find(7) == got and live.find(8) is None
    account = live.account()
    assert account.positions["AAPL.US"].quantity == 3
    assert account.cash["USD"] == D(10000) - 3 * D("237.33")


def test_tradernet_quotes(fake, live):
    assert live.quote("AAPL.US") == D("237.33") and live.quote("NOPE.US") is None
    assert fake.accepted("getStockQuotesJson")[-1] == {"tickers": "NOPE.US"}


def test_a_tradernet_limit_order_works_until_cancelled(fake, live):
    working = live.place(spec(8, qty="1", limit="200"))
    assert working.status == "submitted" and working.filled_quantity == 0
    cancelled = live.cancel(8)
    assert cancelled.status == "cancelled" and fake.placed(8)[0]["stat"] == 31
    assert live.cancel(8).status == "cancelled"  # a finished order: nothing more is sent
    assert len(fake.accepted("delTradeOrder")) == 1


def test_tradernet_rejections_and_errors(fake, live):
    assert live.place(spec(9, qty="1000")).status == "rejected"  # the fake's account lacks the cash
    with pytest.raises(BrokerError, match="not found"):
        live.place(spec(10, symbol="NOPE.US"))
    with pytest.raises(BrokerError, match="whole shares"):
        live.place(spec(11, qty="1.5"))
    wrong = TradernetBroker(api.client(api.Credentials(tradernet.PUBLIC, "wrong", fake.url)))
    with pytest.raises(BrokerError, match="Wrong signature"):
        wrong.account()
    with pytest.raises(BrokerError, match="no order 404"):
        live.cancel(404)


def test_an_unknown_status_code_is_never_taken_for_finished():
    order = to_broker_order(1, {"id": 5, "stat": 99, "trades": []})
    assert order.status == "submitted" and "status 99" in order.note
    part = to_broker_order(1, {"id": 5, "stat": 10, "trades": [{"q": 2, "p": 10.5}]})
    assert part.status == "partially_filled" and part.filled_quantity == 2 and part.average_price == D("10.5")
    with pytest.raises(BrokerError):
        to_broker_order(1, {"id": 5, "stat": 21, "trades": [{"q": "x", "p": 1}]})


# -- limits -------------------------------------------------------------------------------------------
SEC = Security(symbol="AAPL.US", name="Apple", currency="USD", min_trade=D(250))
MONDAY_NOON_NY = datetime(2024, 11, 25, 17, 0, tzinfo=UTC)


def situation(**kw) -> Situation:
    base = dict(
        security=SEC,
        quote=D(100),
        fee=D("2.40"),
        value_base=D(946),
        base="EUR",
        turnover_today=D(0),
        cash=D(5000),
        held=D(0),
        now=MONDAY_NOON_NY,
    )
    return Situation(**{**base, **kw})


def order(**kw) -> PlaceOrder:
    return PlaceOrder(
        **{"client_order_id": "o-1", "symbol": "AAPL.US", "side": "buy", "quantity": "10", "currency": "USD", **kw}
    )


def test_an_order_within_the_limits_passes():
    assert check(order(), situation(), Limits()) == []


@pytest.mark.parametrize(
    ("o", "s", "says"),
    [
        (order(), situation(security=None), "unknown symbol"),
        (order(), situation(security=SEC.model_copy(update={"active": False})), "inactive"),
        (order(currency="EUR"), situation(), "trades in USD, not EUR"),
        (order(), situation(security=SEC.model_copy(update={"lot_size": D(3)})), "whole number of lots"),
        (order(), situation(quote=None), "no quote"),
        (order(limit_price="110"), situation(), "10.0% from the quote"),
        (order(), situation(value_base=D(6000)), "above the maximum of 5000"),
        (order(), situation(turnover_today=D(19500)), "today's turnover would be"),
        (order(quantity="2"), situation(value_base=D(190)), "below AAPL.US's minimum trade"),
        (order(), situation(fee=D(20)), "not worth it"),
        (order(), situation(cash=D(500)), "not enough cash"),
        (order(side="sell"), situation(held=D(5)), "cannot sell 10"),
        (order(), situation(now=datetime(2024, 11, 23, 17, 0, tzinfo=UTC)), "market is closed at Sat"),
    ],
)
def test_each_limit_refuses_with_its_reason(o, s, says):
    reasons = check(o, s, Limits())
    assert any(says in r for r in reasons), reasons


def test_limits_from_the_environment():
    assert Limits.from_env({}) == Limits() and Limits.from_env({}, market_hours="always").market_hours == "always"
    limits = Limits.from_env(
        {"TRADING_MAX_ORDER_VALUE": "750", "TRADING_MARKET_HOURS": "exchange"}, market_hours="always"
    )
    assert limits.max_order_value == 750 and limits.market_hours == "exchange"
    for name, bad in (
        ("TRADING_MAX_ORDER_VALUE", "lots"),
        ("TRADING_MAX_DAILY_TURNOVER", "0"),
        ("TRADING_MAX_PRICE_DEVIATION", "Infinity"),
        ("TRADING_MARKET_HOURS", "never"),
    ):
        with pytest.raises(ValueError, match=name):
            Limits.from_env({name: bad})


def test_market_hours():
    assert market_open("AAPL.US", MONDAY_NOON_NY) is None
    assert "closed" in market_open("AAPL.US", datetime(2024, 11, 25, 21, 5, tzinfo=UTC))  # 16:05 New York
    assert market_open("SAP.EU", datetime(2024, 11, 25, 9, 0, tzinfo=UTC)) is None  # 10:00 Frankfurt
    assert "not known" in market_open("X.KZ", MONDAY_NOON_NY)
    assert check(order(), situation(now=datetime(2024, 11, 23, tzinfo=UTC)), Limits(market_hours="always")) == []


def test_a_locked_paper_account_is_a_broker_error(tmp_path):
    import sqlite3

    paper = PaperBroker(tmp_path / "p.sqlite")
    paper.deposit(D(5000), "USD")
    paper.db.execute("PRAGMA busy_timeout=100")
    lock = sqlite3.connect(tmp_path / "p.sqlite", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(BrokerError, match="cannot be written"):
            paper.place(spec(1))
    finally:
        lock.execute("ROLLBACK")
    assert paper.place(spec(1)).status == "filled" and paper.find(1) is not None
