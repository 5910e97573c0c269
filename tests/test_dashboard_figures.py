"""The dashboard's numbers (`dashboard/figures.py`), without a browser: returns with and
without the deposits' timing, XIRR, the benchmark bought with the same deposits, gains and
weights, and how money and percentages are written."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import figures as f
from schemas.optimization import Target, Targets
from schemas.portfolio import CashBalance, Holding, Summary

D0 = date(2024, 1, 1)


def months(n: int) -> list[date]:
    """The first of n consecutive months from January 2024."""
    return [date(2024 + (m // 12), m % 12 + 1, 1) for m in range(n)]


def test_a_constant_one_percent_a_month_both_ways():
    days = months(13)  # 12 months of growth
    s = f.series([(d, 1000 * 1.01**i) for i, d in enumerate(days)], [f.Flow(days[0], 1000)])
    twr = f.time_weighted(s, 0)
    mwr = f.money_weighted(s, 0)
    assert twr == pytest.approx(1.01**12 - 1, rel=1e-9)
    assert mwr == pytest.approx(1.01**12 - 1, rel=1e-9)  # one deposit: both are the same
    assert f.xirr(f.investor_flows(s)) == pytest.approx((1.01**12) ** (365 / 366) - 1, rel=1e-9)  # 2024: 366 days
    one_year = next(p for p in f.period_returns(s) if p.label == "1 year")
    assert one_year.since == days[0]
    assert one_year.time_weighted == pytest.approx(1.01**12 - 1)


def test_a_deposit_in_the_middle_moves_the_money_weighted_return_only():
    # 100 in, flat for a year, 100 more in, +10 % in the second year: the fund earned 10 %,
    # the investor 10 % on twice the money for half the time.
    days = [date(2021, 1, 1), date(2022, 1, 1), date(2023, 1, 1)]
    s = f.series(list(zip(days, [100.0, 200.0, 220.0], strict=True)), [f.Flow(days[0], 100), f.Flow(days[1], 100)])
    assert f.time_weighted(s, 0) == pytest.approx(0.10)
    v = (-1 + math.sqrt(1 + 8.8)) / 2  # 100 v^2 + 100 v - 220 = 0, v = 1 + r
    assert f.xirr(f.investor_flows(s)) == pytest.approx(v - 1, rel=1e-9)
    assert f.money_weighted(s, 0) == pytest.approx(v**2 - 1, rel=1e-9)  # over the two years
    assert f.deposited(s) == [100, 200, 200]


def test_no_history_shows_nothing_rather_than_zero():
    empty = f.series([], [])
    one = f.series([(D0, 10_000.0)], [f.Flow(D0, 10_000)])
    for s in (empty, one):
        assert all(p.time_weighted is None and p.money_weighted is None for p in f.period_returns(s))
        assert f.risk(s).volatility is None
        assert f.day_change(s) is None
    assert f.xirr([]) is None
    assert f.xirr([(D0, -100.0), (D0 + timedelta(days=30), -5.0)]) is None  # no sign change


def test_a_period_longer_than_the_history_is_not_shown():
    days = [D0 + timedelta(days=i) for i in range(40)]
    s = f.series([(d, 100.0 + i) for i, d in enumerate(days)], [f.Flow(D0, 100)])
    got = {p.label: p for p in f.period_returns(s)}
    assert got["1 month"].since == days[-1] - timedelta(days=30)
    assert got["1 month"].time_weighted == pytest.approx(139 / 109 - 1)
    assert got["3 months"].time_weighted is None and got["1 year"].time_weighted is None
    assert got["All time"].time_weighted == pytest.approx(0.39)


def test_a_gap_in_the_valuations_counts_as_calendar_days():
    s = f.series([(D0, 100.0), (D0 + timedelta(days=10), 110.0)], [f.Flow(D0, 100)])
    r = f.calendar_returns(s)
    assert len(r) == 10 and r[-1] == pytest.approx(0.10) and not r[:-1].any()
    assert f.time_weighted(s, 0) == pytest.approx(0.10)


def test_risk_over_a_year_is_annualised_and_a_loss_shows_its_drawdown():
    days = [D0 + timedelta(days=i) for i in range(400)]
    values = [100 * (1.0005**i if i < 200 else 1.0005**200 * 0.999 ** (i - 200)) for i in range(400)]
    s = f.series(list(zip(days, values, strict=True)), [f.Flow(D0, 100)])
    r = f.risk(s)
    assert r.days == 399
    assert r.annual_return is not None and r.xirr == pytest.approx(r.annual_return, rel=1e-6)
    assert r.max_drawdown == pytest.approx(0.999**199 - 1)
    assert r.volatility is not None and r.volatility > 0
    short = f.risk(f.series(list(zip(days[:30], values[:30], strict=True)), [f.Flow(D0, 100)]))
    assert short.annual_return is None and short.xirr is None  # a month annualised says nothing
    assert short.max_drawdown == pytest.approx(0.0)


def test_the_day_change_leaves_out_that_days_deposit():
    s = f.series([(D0, 1000.0), (D0 + timedelta(days=1), 1510.0)], [f.Flow(D0, 1000), f.Flow(D0 + timedelta(1), 500)])
    change, share = f.day_change(s) or (None, None)
    assert change == pytest.approx(10) and share == pytest.approx(0.01)


def test_deposits_are_dated_when_seen_and_the_unseen_go_on_the_first_day():
    seen = {date(2024, 3, 5): 10_000.0, date(2024, 4, 1): 10_500.0, date(2024, 4, 2): 10_500.0}
    assert f.deposit_flows(seen, date(2024, 1, 1)) == [
        f.Flow(date(2024, 1, 1), 10_000),
        f.Flow(date(2024, 4, 1), 500),
    ]
    assert f.deposit_flows(seen, None)[0] == f.Flow(date(2024, 3, 5), 10_000)
    assert f.deposit_flows({}, D0) == []


def test_a_flow_goes_on_the_next_valuation_day():
    s = f.series([(date(2024, 1, 3), 1.0), (date(2024, 1, 1), 1.0)], [f.Flow(date(2024, 1, 2), 5), f.Flow(D0, 1)])
    assert s.days == [date(2024, 1, 1), date(2024, 1, 3)] and s.flows == [1, 5]


def test_the_benchmark_buys_units_with_each_deposit_at_that_days_close():
    days = [D0, D0 + timedelta(days=1), D0 + timedelta(days=2), D0 + timedelta(days=5)]
    s = f.series([(d, 0.0) for d in days], [f.Flow(D0, 100), f.Flow(days[2], 50)])
    prices = [(D0, 10.0), (D0 + timedelta(days=1), 20.0), (D0 + timedelta(days=2), 25.0)]  # none after: last close
    assert f.benchmark(s, prices) == pytest.approx([100, 200, 300, 300])  # 10 units, then 2 more at 25
    late = [(D0 + timedelta(days=1), 20.0)]
    assert f.benchmark(s, late) == [None, 100, 150, 150]  # the first deposit waits for a price


@settings(max_examples=200, deadline=None)
@given(
    prices=st.lists(st.floats(0.5, 2.0), min_size=2, max_size=60),
    buys=st.lists(st.floats(0, 1000), min_size=60, max_size=60),
)
def test_deposits_made_at_the_closes_value_leave_the_time_weighted_return_alone(prices, buys):
    # A fund's unit price path; an investor buys units at each day's close. Whatever the
    # deposits, the time-weighted return is the unit price's return.
    days = [D0 + timedelta(days=i) for i in range(len(prices))]
    units, points, flows = 0.0, [], []
    for i, (d, p) in enumerate(zip(days, prices, strict=False)):
        bought = buys[i] + (1.0 if i == 0 else 0.0)  # something in at the start
        units += bought / p
        points.append((d, units * p))
        flows.append(f.Flow(d, bought))
    s = f.series(points, flows)
    assert f.time_weighted(s, 0) == pytest.approx(prices[-1] / prices[0] - 1, rel=1e-7, abs=1e-9)
    assert f.benchmark(s, list(zip(days, prices, strict=False))) == pytest.approx([v for _, v in points])


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(-0.6, 1.5),
    deposits=st.lists(st.tuples(st.integers(0, 2000), st.floats(1, 10_000)), min_size=1, max_size=12),
    horizon=st.integers(1, 800),
)
def test_xirr_recovers_the_rate_the_flows_were_made_with(rate, deposits, horizon):
    first = min(d for d, _ in deposits)
    end = D0 + timedelta(days=max(d for d, _ in deposits) + horizon)
    flows = [(D0 + timedelta(days=d), -a) for d, a in deposits]
    final = sum(a * (1 + rate) ** ((end - (D0 + timedelta(days=d))).days / 365) for d, a in deposits)
    flows.append((end, final))
    assert (end - (D0 + timedelta(days=first))).days >= 1
    assert f.xirr(flows) == pytest.approx(rate, abs=1e-6)


def summary(**over: object) -> Summary:
    fields: dict[str, object] = {
        "base": "EUR",
        "mode": "paper",
        "broker": "paper",
        "positions": [
            Holding(
                symbol="AAPL.US",
                quantity=Decimal(10),
                average_price=Decimal("100"),
                currency="USD",
                price=Decimal("110"),
                value=Decimal("1100.00"),
                value_base=Decimal("990.00"),
                weight=Decimal("0.495"),
            ),
            Holding(symbol="XOM.US", quantity=Decimal(3), average_price=Decimal("50"), currency="USD"),
        ],
        "cash": [CashBalance(currency="USD", amount=Decimal("1121.11"), amount_base=Decimal("1010.00"))],
        "positions_base": Decimal("990.00"),
        "cash_base": Decimal("1010.00"),
        "total_base": Decimal("2000.00"),
        "unpriced": ["XOM.US"],
        "fx": {"USD": Decimal("0.9")},
        "fx_source": "test",
        "deposits_base": Decimal("2000"),
        "dividends_base": Decimal("0"),
        "at": datetime(2024, 1, 2, tzinfo=UTC),
    }
    return Summary.model_validate({**fields, **over})


def targets(**weights: str) -> Targets:
    return Targets(
        targets=[
            Target(symbol=s.replace("_", "."), weight=Decimal(w), mean_variance=Decimal(w), hrp=Decimal(w))
            for s, w in weights.items()
        ],
        mean_variance_method="max_sharpe",
        hrp_method="hrp",
        fallbacks=[],
        blend=Decimal("0.5"),
        returns_model="mean",
        risk_free_rate=Decimal(0),
        max_weight=Decimal("0.6"),
        expected_return=Decimal("0.1"),
        volatility=Decimal("0.2"),
        sharpe=Decimal("0.5"),
        inputs_from=None,
        inputs_to=None,
        observations=0,
        excluded=[],
        computed_at=datetime(2024, 1, 2, tzinfo=UTC),
    )


def test_a_positions_gain_is_its_value_against_its_average_price():
    rows = f.positions(summary(), targets(AAPL_US="0.6", MSFT_US="0.4"))
    aapl, xom = rows
    assert (aapl.symbol, aapl.gain, aapl.gain_base, aapl.gain_share) == ("AAPL.US", Decimal(100), Decimal(90), 0.1)
    assert (aapl.weight, aapl.target) == (0.495, 0.6)
    assert (xom.symbol, xom.value, xom.gain, xom.target) == ("XOM.US", None, None, 0.0)  # unpriced: no guess
    assert f.positions(summary(), None)[0].target is None


def test_weights_list_every_held_or_targeted_security_and_cash():
    got = f.weights_against_targets(summary(), targets(MSFT_US="0.5", AAPL_US="0.4"))
    assert got == [
        ("MSFT.US", 0.0, 0.5),
        ("AAPL.US", 0.495, 0.4),
        ("XOM.US", 0.0, 0.0),
        ("Cash", 0.505, pytest.approx(0.1)),
    ]


def test_money_and_percentages_are_written_for_a_person():
    assert f.money(Decimal("12345.675"), "EUR") == "EUR 12,345.68"
    assert f.money(Decimal("-1234.5"), "EUR") == "EUR -1,234.50"
    assert f.money(-0.001, "EUR") == "EUR 0.00"
    assert f.money(12.3, "EUR", sign=True) == "EUR +12.30"
    assert f.money(None, "EUR") == f.money(math.nan, "EUR") == "-"
    assert f.percent(0.01234) == "1.23 %" and f.percent(0.01234, 1, sign=True) == "+1.2 %"
    assert f.percent(-0.5, sign=True) == "-50.00 %" and f.percent(None) == "-"
    assert f.quantity(Decimal("10.000")) == "10" and f.quantity(Decimal("1234.5")) == "1,234.5"
    assert f.day(date(2024, 1, 2)) == "2024-01-02"
    assert f.day(datetime(2024, 1, 2, 14, 3, tzinfo=UTC)) == "2024-01-02 14:03 UTC"
