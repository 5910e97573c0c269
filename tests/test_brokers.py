"""The broker adapters without MQTT: the paper account on a real SQLite file, the real
tradernet-sdk against the local fake of the Tradernet API, fees, FX and the limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from nodes.brokers import AccountSettings, LiveRefused, open_broker
from nodes.brokers import tradernet_api as api
from nodes.brokers.base import BrokerError, NoAnswer, OrderSpec, Refused
from nodes.brokers.paper import PaperBroker
from nodes.brokers.tradernet import STATUSES, TradernetBroker, sighting
from nodes.money.fees import FeeSchedule
from nodes.money.fx import FxError, Rates
from nodes.trading.limits import Limits, Situation, check, market_open
from schemas.trading import PlaceOrder
from schemas.universe import Security
from tests.fakes import tradernet

D = Decimal
FX = Rates("EUR", {"USD": (D(1) / D("1.0565")).quantize(D("1E-10"))}, "test")  # EUR 1 = USD 1.0565


def spec(
    ref: int, side: str = "buy", qty: str = "10", quote: str = "100", limit: str | None = None, symbol: str = "AAPL.US"
) -> OrderSpec:
    return OrderSpec(
        broker_ref=ref,
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
    assert (filled.evidence, filled.filled, filled.average_price) == ("fill", 10, D("100.1"))  # 0.1 % against
    fee = FeeSchedule().fee(D("1001"), "USD", FX)
    assert filled.fee == fee and filled.broker_ref == 1 and filled.trade_ids == ("paper-1",)
    account = paper.account()
    assert account.cash["USD"] == D(5000) - D("1001") - fee
    assert account.positions["AAPL.US"].quantity == 10 and account.positions["AAPL.US"].average_price == D("100.1")
    assert [(m.kind, m.amount) for m in paper.cash_moves()] == [("deposit", D(5000)), ("fee", -fee)]


def test_the_same_paper_broker_id_twice_is_refused(paper):
    paper.place(spec(1))
    with pytest.raises(Refused, match="has an order 1 already"):
        paper.place(spec(1))
    assert paper.account().positions["AAPL.US"].quantity == 10


def test_paper_sells_and_refusals(paper):
    paper.place(spec(1, qty="10"))
    sold = paper.place(spec(2, side="sell", qty="4", quote="110"))
    assert sold.evidence == "fill" and sold.average_price == D("109.89")
    assert paper.account().positions["AAPL.US"].quantity == 6
    too_many = paper.place(spec(3, side="sell", qty="7"))
    assert too_many.evidence == "reject" and "not enough shares" in too_many.note
    too_dear = paper.place(spec(4, qty="1000"))
    assert too_dear.evidence == "reject" and "insufficient cash" in too_dear.note
    beyond = paper.place(spec(5, qty="1", quote="100", limit="99"))
    assert beyond.evidence == "cancel" and "beyond the limit" in beyond.note
    assert paper.account().positions["AAPL.US"].quantity == 6
    listed = {s.broker_ref: s.evidence for s in paper.orders(datetime(2000, 1, 1, tzinfo=UTC))}
    assert listed == {1: "fill", 2: "fill", 3: "reject", 4: "reject", 5: "cancel"}


def test_the_paper_broker_fails_as_it_is_told(paper):
    since = datetime(2000, 1, 1, tzinfo=UTC)
    paper.inject("place", "drop_after")
    with pytest.raises(NoAnswer, match="after"):
        paper.place(spec(1))
    assert [s.broker_ref for s in paper.orders(since)] == [1]  # booked all the same
    paper.inject("place", "drop_before")
    with pytest.raises(NoAnswer, match="before"):
        paper.place(spec(2))
    paper.inject("place", "refuse", "instrument suspended")
    with pytest.raises(Refused, match="instrument suspended"):
        paper.place(spec(3))
    paper.inject("place", "late")
    with pytest.raises(NoAnswer):
        paper.place(spec(4))
    paper.inject("orders", "fail")
    with pytest.raises(NoAnswer):
        paper.orders(since)
    assert [s.broker_ref for s in paper.orders(since)] == [1, 4]  # the late one shows up at the next look
    with pytest.raises(ValueError, match="no fault"):
        paper.inject("place", "explode")


def test_paper_sells_everything_and_keeps_cash_per_currency(paper):
    paper.deposit(D(100), "EUR")
    paper.place(spec(1, qty="10"))
    paper.place(spec(2, side="sell", qty="10"))
    account = paper.account()
    assert "AAPL.US" not in account.positions and account.cash["EUR"] == 100
    assert [m.kind for m in paper.cash_moves()] == ["deposit", "deposit", "fee", "fee"]
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


def test_a_tradernet_market_order_is_a_cash_order_with_our_id(fake, live):
    got = live.place(spec(7, qty="3", quote="237.33"))
    assert got.evidence == "accept" and got.broker_ref == 7
    sent = fake.accepted("putTradeOrder")[-1]
    assert sent["user_order_id"] == 7 and sent["action_id"] == 1 and sent["order_type_id"] == 1  # not margin (2)
    listed = live.orders(datetime.now(UTC) - timedelta(days=1))
    [seen] = [s for s in listed if s.broker_order_id == got.broker_order_id]
    assert (seen.evidence, seen.filled, seen.average_price, seen.broker_ref) == ("fill", 3, D("237.33"), 7)
    assert seen.fee is None and seen.trade_ids  # no commission in an order row: the cash flows have it
    account = live.account()
    assert account.positions["AAPL.US"].quantity == 3


def test_tradernet_quotes(fake, live):
    assert live.quote("AAPL.US") == D("237.33") and live.quote("NOPE.US") is None
    assert fake.accepted("getStockQuotesJson")[-1] == {"tickers": "NOPE.US"}


def test_tradernet_refusals_are_definite_and_transport_failures_are_not(fake, live):
    with pytest.raises(Refused):
        live.place(spec(10, symbol="NOPE.US"))
    with pytest.raises(Refused, match="whole shares"):
        live.place(spec(11, qty="1.5"))
    wrong = TradernetBroker(api.client(api.Credentials(tradernet.PUBLIC, "wrong", fake.url)))
    with pytest.raises(Refused, match="Wrong signature"):
        wrong.account()
    fake.fault("putTradeOrder", "drop_after")
    with pytest.raises(NoAnswer):
        live.place(spec(12))
    assert fake.count(user_order_id=12) == 1  # booked although no answer came


@pytest.mark.parametrize("code", sorted(STATUSES))
def test_every_documented_status_code_has_its_meaning(code):
    row = {"id": 5, "instr": "AAPL.US", "oper": 1, "q": 4, "stat": code, "leaves_qty": 4, "trade": []}
    seen = sighting(row)
    assert seen.evidence == STATUSES[code][1] and STATUSES[code][0] in seen.note


def test_a_row_is_read_in_every_documented_shape():
    row = {
        "order_id": 5,
        "instr": "AAPL.US",
        "oper": 3,
        "q": 4,
        "stat": 20,
        "date": "2024-11-29T17:05:02.133",
        "userOrderId": "apiv2:1000000007",
        "trade": [{"id": 13, "q": 1, "p": 10.5}, {"id": 14, "q": "1", "p": "11,5"}],
    }
    seen = sighting(row)
    assert (seen.broker_order_id, seen.broker_ref, seen.side, seen.filled, seen.average_price) == (
        "5",
        1000000007,
        "sell",
        2,
        D(11),
    )
    assert seen.placed_at == datetime(2024, 11, 29, 14, 5, 2, 133000, tzinfo=UTC)  # Moscow time, read as such
    assert seen.trade_ids == ("13", "14")
    assert sighting({**row, "userOrderId": "cps_21112"}).broker_ref == 0  # another client's id
    assert sighting({**row, "userOrderId": "0"}).broker_ref is None  # none at all
    assert sighting({**row, "trade": "[]", "stat": 10}).filled == 0  # executions as JSON text
    done = sighting({**row, "trade": [], "stat": 21, "leaves_qty": 0})
    assert done.filled == 4 and done.average_price is None and "not listed" in done.note


def test_an_unknown_status_code_is_never_taken_for_finished():
    row = {"id": 5, "instr": "AAPL.US", "oper": 1, "q": 4, "stat": 99, "trade": []}
    assert sighting(row).evidence is None and "not documented" in sighting(row).note
    with pytest.raises(BrokerError):
        sighting({**row, "trade": [{"q": "x", "p": 1}]})
    with pytest.raises(BrokerError):
        sighting({**row, "id": None})


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
    assert paper.place(spec(1)).evidence == "fill"
