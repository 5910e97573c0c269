"""Currency exchanges, pure: the pair's arithmetic, rates from its quotes, its fee, the paper
broker's fill, trading's limits on it, the opportunity node's exchange orders and the
coordinator's use of them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from nodes.brokers.base import OrderSpec
from nodes.brokers.paper import PaperBroker
from nodes.coordinator import cycle
from nodes.coordinator.beam import Verdict
from nodes.money import pairs
from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates
from nodes.opportunity.exchanges import exchanges, needs
from nodes.opportunity.model import Listing, Settings
from nodes.trading.limits import Limits, Situation, check
from schemas.planning import Evaluation, ProposePlan
from schemas.trading import PlaceOrder
from schemas.universe import Security
from tests.actions import action

D = Decimal
PAIR = "EURUSD_T0.ITS"
EUR_BASE = Rates("EUR", {"USD": D(1) / D("1.10")}, "test")
LISTINGS = {
    PAIR: Listing("USD", D(1), D(0), True),
    "AAPL.US": Listing("USD", D(1), D(0), True),
}


def test_a_pair_names_its_currencies_and_what_each_side_does():
    pair = pairs.parse(PAIR)
    assert pair == pairs.Pair(PAIR, "EUR", "USD")
    assert pairs.parse("AAPL.US") is None and pairs.investable(["AAPL.US", PAIR]) == ["AAPL.US"]
    assert pair.side("EUR", "USD") == "sell" and pair.side("USD", "EUR") == "buy"
    assert pair.brings("sell") == "USD" and pair.brings("buy") == "EUR"
    assert pair.moves("sell", D(100), D("1.1")) == {"EUR": D(-100), "USD": D("110.0")}
    assert pair.moves("buy", D(100), D("1.1")) == {"EUR": D(100), "USD": D("-110.0")}
    with pytest.raises(ValueError, match="does not exchange"):
        pair.side("EUR", "GBP")
    assert pairs.between("USD", "EUR", ["AAPL.US", PAIR]) == pair
    assert pairs.between("GBP", "EUR", ["AAPL.US", PAIR]) is None


def test_the_pairs_close_is_the_rate_either_way_round():
    eur = Rates().quoted({PAIR: D("1.25"), "AAPL.US": D(200)})
    assert eur.rate("USD") == D("0.8") and PAIR in eur.source
    usd = Rates("USD", {"EUR": D("1.0565")}, "setting").quoted({PAIR: D("1.25")})
    assert usd.rate("EUR") == D("1.25")
    assert Rates().quoted({"AAPL.US": D(1)}) == Rates()  # no pair quoted: the setting stays


def test_an_exchange_pays_the_exchange_schedule_not_the_share_one():
    fees = FeeSchedule()
    assert fees.fee(D(1000), "USD", EUR_BASE, PAIR) == D("2.00")  # 0.2 %, no fixed part
    assert fees.fee(D(1000), "USD", EUR_BASE, "AAPL.US") == D("1.20") + D("1.32")  # 0.12 % + EUR 1.20 in USD


def spec(ref: int, side: str, qty: str, quote: str = "1.10") -> OrderSpec:
    return OrderSpec(ref, f"c-{ref}", PAIR, side, D(qty), "USD", None, D(quote))


def test_the_paper_broker_fills_a_pair_as_a_cash_move(tmp_path):
    paper = PaperBroker(tmp_path / "p.sqlite", fx=EUR_BASE)
    paper.deposit(D(1000), "EUR")
    sold = paper.place(spec(1, "sell", "500"))
    price = D("1.10") * D("0.999")  # the slippage against the trader
    assert (sold.status, sold.filled, sold.average_price) == ("filled", 500, price)
    fee = FeeSchedule().fee(price * 500, "USD", EUR_BASE, PAIR)
    account = paper.account()
    assert account.cash == {"EUR": D(500), "USD": price * 500 - fee} and account.positions == {}
    refused = paper.place(spec(2, "sell", "501"))  # more euros than the account has
    assert refused.status == "rejected" and "EUR 501 needed, 500 available" in refused.note
    bought = paper.place(spec(3, "buy", "100"))  # back: pays USD for 100 EUR
    assert bought.status == "filled" and paper.account().cash["EUR"] == D(600)


SEC = Security(symbol=PAIR, name="EUR/USD", currency="USD", exchange="ITS_MONEY")


def situation(**kw) -> Situation:
    base = dict(
        security=SEC,
        quote=D("1.10"),
        fee=D("1.10"),
        value_base=D(500),
        base="EUR",
        turnover_today=D(0),
        cash=D(0),
        held=D(500),
        now=datetime(2024, 11, 25, 12, 0, tzinfo=UTC),  # a Monday, noon in Frankfurt
    )
    return Situation(**{**base, **kw})


def test_trading_checks_an_exchange_as_any_order():
    sell = PlaceOrder(client_order_id="x-1", symbol=PAIR, side="sell", quantity=D(500), currency="USD")
    assert check(sell, situation(), Limits()) == []
    assert any(
        "cannot sell 500 EURUSD_T0.ITS: 400 EUR cash" in r for r in check(sell, situation(held=D(400)), Limits())
    )
    assert any("above the maximum" in r for r in check(sell, situation(value_base=D(6000)), Limits()))
    sunday = situation(now=datetime(2024, 11, 24, 12, 0, tzinfo=UTC))
    assert any(".ITS market is closed" in r for r in check(sell, sunday, Limits()))


def buy(symbol: str, value: str, fee: str = "1.5") -> object:
    a = action(symbol, "buy", 1)
    return a.model_copy(update={"value": D(value), "fee": D(fee), "price": D(value), "value_base": D(value)})


def test_buys_in_usd_with_euros_get_exchanges_within_the_order_limit():
    buys = [buy("AAPL.US", "8000"), buy("AAPL.US", "4000"), buy("MSFT.US", "3000")]
    need = needs(buys)
    assert need == {"USD": D("8000") * D("1.005") + D("1.5") + D("3000") * D("1.005") + D("1.5")}
    s = Settings(max_order=D(5000))
    made, notes = exchanges(
        buys, {"EUR": D(20000), "USD": D(100)}, LISTINGS, {PAIR: D("1.10")}, FeeSchedule(), EUR_BASE, s
    )
    assert notes == [] and len(made) == 3 and all(a.kind == "exchange" and a.side == "sell" for a in made)
    assert all(a.value_base <= 5000 for a in made)
    brought = sum(a.value - a.fee for a in made)
    assert need["USD"] - 100 <= brought <= (need["USD"] - 100) * D("1.01")  # the shortfall, with a small margin
    left = cycle.after_exchanges({"EUR": D(20000), "USD": D(100)}, made, D("0.005"))
    assert left["USD"] >= need["USD"] * D("0.995") and left["EUR"] == 20000 - sum(a.quantity for a in made)


def test_the_reserve_stays_in_euros_and_what_cannot_be_exchanged_says_why():
    buys = [buy("AAPL.US", "3000")]
    s = Settings()
    made, _ = exchanges(buys, {"EUR": D(1000)}, LISTINGS, {PAIR: D("1.10")}, FeeSchedule(), EUR_BASE, s, D(400))
    assert sum(a.quantity for a in made) == 600  # all but the reserve: less than the buys need
    none, notes = exchanges(buys, {"EUR": D(1000)}, LISTINGS, {}, FeeSchedule(), EUR_BASE, s)
    assert none == [] and "has no quote" in notes[0]
    unlisted = {"AAPL.US": LISTINGS["AAPL.US"]}
    none, notes = exchanges(buys, {"EUR": D(1000)}, unlisted, {PAIR: D("1.10")}, FeeSchedule(), EUR_BASE, s)
    assert none == [] and "no pair in the universe" in notes[0]
    funded, _ = exchanges(
        buys, {"EUR": D(1000), "USD": D(4000)}, LISTINGS, {PAIR: D("1.10")}, FeeSchedule(), EUR_BASE, s
    )
    assert funded == []  # the USD cash covers the buys


def test_a_plan_sends_the_exchanges_its_buys_need_first():
    cash = {"EUR": D(20000)}
    fees, quotes = FeeSchedule(), {PAIR: D("1.10")}
    made, _ = exchanges([buy("AAPL.US", "9000")], cash, LISTINGS, quotes, fees, EUR_BASE, Settings())
    assert len(made) == 2  # 9,000 USD need two exchanges under the 5,000 EUR limit
    evaluation = Evaluation(score=1, parts={}, baseline_score=0, sequences=1, batches=1, workers=[], seconds=0)
    buying = ProposePlan(cycle_id="c", actions=[buy("AAPL.US", "9000")], evaluation=evaluation, reasons=["score"])
    plan = cycle.with_exchanges(Verdict(evaluation, buying, []), made, cash, D("0.005")).proposal
    assert [a.kind for a in plan.actions] == ["exchange", "exchange", "buy_underweight"]
    assert plan.reasons[0] == "score" and "exchange EUR into USD" in plan.reasons[1]
    small = buying.model_copy(update={"actions": [buy("AAPL.US", "1000")]})  # the search chose less
    plan = cycle.with_exchanges(Verdict(evaluation, small, []), made, cash, D("0.005")).proposal
    assert [a.kind for a in plan.actions] == ["exchange", "buy_underweight"]  # one exchange covers it
    covered = cycle.with_exchanges(Verdict(evaluation, small, []), made, {"USD": D(2000)}, D("0.005"))
    assert covered.proposal.actions == small.actions  # the USD cash covers the buy: no exchange
    selling = buying.model_copy(update={"actions": [action("AAPL.US", "sell", 1000)]})
    assert cycle.with_exchanges(Verdict(evaluation, selling, []), made, cash, D("0.005")).proposal == selling


def test_the_ecb_rate_becomes_the_pairs_column_without_look_ahead(tmp_path):
    from nodes.universe import bundle

    prices = tmp_path / "prices.csv.gz"
    days = [date(1999, 1, 1), date(1999, 1, 4), date(1999, 1, 5), date(1999, 1, 6)]
    bundle.write(["A.US"], [(d, [D(k + 1)]) for k, d in enumerate(days)], prices)
    ecb = tmp_path / "eurofxref-hist.csv"
    ecb.write_text("Date,USD,JPY,\n1999-01-06,1.1743,N/A,\n1999-01-04,1.1789,133.73,\n1999-01-02,N/A,1,\n")
    bundle.build_fx(ecb, prices)
    bundle.build_fx(ecb, prices)  # again: the column is replaced, not added twice
    symbols, rows = bundle.read(prices)
    assert symbols == ["A.US", PAIR]
    assert list(rows) == [
        (days[0], [D(1), None]),  # before the first rate: none, never a guess
        (days[1], [D(2), D("1.1789")]),
        (days[2], [D(3), D("1.1789")]),  # no ECB rate that day: the latest before it
        (days[3], [D(4), D("1.1743")]),
    ]
    assert list(bundle.frame(prices).columns) == ["A.US"]  # a pair is a rate, not a security
    assert list(bundle.frame(prices, pairs=True).columns) == ["A.US", PAIR]


def test_the_bundled_pair_is_the_ecbs_reference_rate():
    from nodes.universe import bundle

    rates = dict(bundle.history(PAIR))
    assert rates[date(2024, 11, 29)] == D("1.0562") and rates[date(2010, 1, 4)] == D("1.4389")


def test_a_pair_is_never_scored_or_optimised():
    from nodes.history import NotInUniverse, chosen
    from schemas.universe import Universe

    universe = Universe(
        securities=[Security(symbol="AAPL.US", name="Apple", currency="USD"), SEC],
        at=datetime(2024, 11, 29, tzinfo=UTC),
    )
    assert chosen(universe, []) == ["AAPL.US"]
    with pytest.raises(NotInUniverse, match="currency pairs are rates"):
        chosen(universe, [PAIR])


def test_the_dashboard_lists_the_pair_as_an_exchange_rate():
    from dashboard.pages.universe import security_rows
    from schemas.universe import Universe

    universe = Universe(securities=[SEC], at=datetime(2024, 11, 29, tzinfo=UTC))
    [row] = security_rows(universe, None, None, None)
    assert (row["symbol"], row["score_text"], row["target_text"]) == (PAIR, "exchange rate", "-")


def test_a_buy_is_also_sized_to_the_euros_an_exchange_would_bring():
    from nodes.opportunity import model as opp

    quotes = {"AAPL.US": D(100), PAIR: D("1.10")}
    holdings = {"AAPL.US": opp.Holding(D(300), "USD")}  # 30,000 USD = 27,272.73 EUR
    found = opp.candidates(
        holdings, {"EUR": D(1000)}, {"AAPL.US": D(1)}, {"AAPL.US": 70.0}, LISTINGS, quotes, FeeSchedule(), EUR_BASE
    )
    # the gap: 1000 EUR = 11 shares, half of it 5; and what the euros bring: 1,100 USD less the
    # exchange's fee and margin (0.7 %), less the fee share (1 %): 1,081.47 USD, 10 shares
    assert sorted(a.quantity for a in found.actions) == [5, 10, 11]
    assert all(a.kind == "deploy_cash" and a.currency == "USD" for a in found.actions)


def test_exchanges_keep_within_the_days_turnover_left_to_them():
    buys = [buy("AAPL.US", "8000")]
    quotes, cash = {PAIR: D("1.10")}, {"EUR": D(20000)}
    made, _ = exchanges(buys, cash, LISTINGS, quotes, FeeSchedule(), EUR_BASE, Settings(), budget_base=D(3000))
    assert sum(a.value_base for a in made) <= 3000 and sum(a.quantity for a in made) == 3000
    none, _ = exchanges(buys, cash, LISTINGS, quotes, FeeSchedule(), EUR_BASE, Settings(), budget_base=D(0))
    assert none == []
