"""The replay's report for a European investor with USD stocks (`replay/report.py`,
`baselines.py`): rates that move day by day from the prices' pair column (`EURUSD_T0.ITS`,
USD per EUR), the pair never a security, the alternatives paying the same exchange as the
system, the exchanges and their cost in the figures; and a USD ledger of before the pairs
giving the figures it always gave."""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nodes.money.fees import FeeSchedule
from replay import baselines, driver, report
from replay.ledger import Ledger, Step, Trade
from tests.test_replay_report import days, ledger, random_walks, step, trade

PAIR = "EURUSD_T0.ITS"


# -- a USD ledger of before the pairs ------------------------------------------------------------


def usd_book() -> tuple[Ledger, pd.DataFrame]:
    """A USD investor's system over 160 days: a deposit every 20 days (5000 first, then 1000),
    the cash put into the step's target weights at the close moved 0.1 % against it, 0.1 % +
    1 USD a trade, sells first; one refusal; targets and scores that move."""
    prices = random_walks(160, ["AAA.US", "BBB.US", "CCC.US", "SPY.US"], 11, start="2014-10-01")
    rng = np.random.default_rng(5)
    rate, fixed, slip = 0.001, 1.0, 0.001
    shares: dict[str, int] = {}
    cash = 0.0
    steps = []
    for k, on in enumerate(prices.index[::20]):
        deposit = 5000.0 if k == 0 else 1000.0
        cash += deposit
        w = rng.dirichlet(np.ones(3))
        targets = dict(zip(["AAA.US", "BBB.US", "CCC.US"], w.tolist(), strict=True))
        row = prices.loc[on]
        value = cash + sum(q * row[s] for s, q in shares.items())
        want = {s: math.floor(value * 0.97 * x / row[s]) for s, x in targets.items()}
        trades = []
        for s in sorted(want, key=lambda s: want[s] - shares.get(s, 0)):
            n = want[s] - shares.get(s, 0)
            if n < 0:
                price = row[s] * (1 - slip)
                fee = -n * price * rate + fixed
                cash += -n * price - fee
                trades.append(trade(s, "sell", -n, round(price, 6), round(fee, 2)))
            elif n > 0:
                price = row[s] * (1 + slip)
                n = min(n, math.floor((cash - fixed) / (price * (1 + rate))))
                if n <= 0:
                    continue
                fee = n * price * rate + fixed
                cash -= n * price + fee
                trades.append(trade(s, "buy", n, round(price, 6), round(fee, 2)))
            shares[s] = shares.get(s, 0) + n
        scores = {s: float(rng.uniform(30, 80)) for s in targets}
        steps.append(step(on, deposit, dict(shares), round(cash, 2), trades, targets, scores))
    book = Ledger(
        start=steps[0].day,
        end=prices.index[-1].date(),
        base="USD",
        fee_rate=Decimal("0.001"),
        fee_fixed=Decimal(1),
        fee_currency="USD",
        slippage=Decimal("0.001"),
        first_deposit=(Decimal(5000), "USD"),
        monthly_deposit=(Decimal(1000), "USD"),
        settings={"BASE_CURRENCY": "USD", "FX_RATES": "EUR=1.0565"},
        steps=steps,
    )
    return book, prices


USD_FIGURES = {
    "whole": {
        "start": "2014-10-01",
        "end": "2015-05-12",
        "steps": 8,
        "months_per_s": 1.0,
        "xirr": 0.386287824085,
        "total_return": 0.229642528657,
        "twr_cagr": 0.387685491596,
        "volatility": 0.195340765625,
        "sharpe": 1.77532197436,
        "sortino": 2.70724227701,
        "max_drawdown": -0.0718001698286,
        "turnover": 4.42714791594,
        "fees": 90.76,
        "trades": 24,
        "avg_cash": 0.0365575151285,
        "limit_refusals": 0,
        "deposited": 12000.0,
        "final_value": 13845.0454604,
        "reversals": 18,
        "unjustified_reversals": 0,
        "targets_only_xirr": 0.398785546642,
        "targets_only_total_return": 0.236506661599,
        "targets_only_twr_cagr": 0.399982774164,
        "targets_only_volatility": 0.201042424461,
        "targets_only_sharpe": 1.7744969523,
        "targets_only_sortino": 2.70459031051,
        "targets_only_max_drawdown": -0.0738341012738,
        "targets_only_turnover": 4.57712784057,
        "targets_only_fees": 93.125076766,
        "targets_only_trades": 24,
        "targets_only_avg_cash": 0.00892543371556,
        "targets_only_limit_refusals": 0,
        "targets_only_deposited": 12000.0,
        "targets_only_final_value": 13900.3075625,
        "equal_weight_xirr": 0.34566664929,
        "equal_weight_total_return": 0.194549459915,
        "equal_weight_twr_cagr": 0.325443661438,
        "equal_weight_volatility": 0.162737446205,
        "equal_weight_sharpe": 1.81294668731,
        "equal_weight_sortino": 2.87506125935,
        "equal_weight_max_drawdown": -0.0593254960761,
        "equal_weight_turnover": 0.00825985138335,
        "equal_weight_fees": 36.0100232158,
        "equal_weight_trades": 24,
        "equal_weight_avg_cash": 0.00981759992314,
        "equal_weight_limit_refusals": 0,
        "equal_weight_deposited": 12000.0,
        "equal_weight_final_value": 13663.7657185,
        "spy_xirr": 0.0626444409169,
        "spy_total_return": 0.0710858067408,
        "spy_twr_cagr": 0.114984026028,
        "spy_volatility": 0.32516500862,
        "spy_sharpe": 0.495638796731,
        "spy_sortino": 0.746204576798,
        "spy_max_drawdown": -0.258144126936,
        "spy_turnover": 0.0,
        "spy_fees": 19.9510392958,
        "spy_trades": 8,
        "spy_avg_cash": 0.00267077668982,
        "spy_limit_refusals": 0,
        "spy_deposited": 12000.0,
        "spy_final_value": 12319.956508,
    },
    "out_of_sample": {
        "start": "2015-01-21",
        "end": "2015-05-12",
        "steps": 4,
        "months_per_s": 1.0,
        "xirr": 0.411841697349,
        "total_return": 0.117815495895,
        "twr_cagr": 0.426574899922,
        "volatility": 0.201759905759,
        "sharpe": 1.86168876453,
        "sortino": 2.80570100248,
        "max_drawdown": -0.0718001698286,
        "turnover": 5.76401006157,
        "fees": 59.34,
        "trades": 12,
        "avg_cash": 0.0332338157086,
        "limit_refusals": 0,
        "deposited": 12620.411783,
        "final_value": 13845.0454604,
        "reversals": 8,
        "unjustified_reversals": 0,
        "targets_only_xirr": 0.42385204708,
        "targets_only_total_return": 0.12079905289,
        "targets_only_twr_cagr": 0.438756405023,
        "targets_only_volatility": 0.207485174389,
        "targets_only_sharpe": 1.85692875336,
        "targets_only_sortino": 2.79810827428,
        "targets_only_max_drawdown": -0.0738341012738,
        "targets_only_turnover": 5.93087273064,
        "targets_only_fees": 60.9745171294,
        "targets_only_trades": 12,
        "targets_only_avg_cash": 0.00627809690568,
        "targets_only_limit_refusals": 0,
        "targets_only_deposited": 12641.6334951,
        "targets_only_final_value": 13900.3075625,
        "equal_weight_xirr": 0.593970643608,
        "equal_weight_total_return": 0.162530277531,
        "equal_weight_twr_cagr": 0.616707119701,
        "equal_weight_volatility": 0.161286881053,
        "equal_weight_sharpe": 3.06085258881,
        "equal_weight_sortino": 4.95107716461,
        "equal_weight_max_drawdown": -0.0408329884662,
        "equal_weight_turnover": 0.0158395605751,
        "equal_weight_fees": 16.1194832985,
        "equal_weight_trades": 12,
        "equal_weight_avg_cash": 0.0091762873267,
        "equal_weight_limit_refusals": 0,
        "equal_weight_deposited": 12063.4356035,
        "equal_weight_final_value": 13663.7657185,
        "spy_xirr": -0.411700795674,
        "spy_total_return": -0.149515588457,
        "spy_twr_cagr": -0.403453111802,
        "spy_volatility": 0.312429340925,
        "spy_sharpe": -1.49731465391,
        "spy_sortino": -1.99912414816,
        "spy_max_drawdown": -0.258144126936,
        "spy_turnover": 0.0,
        "spy_fees": 7.99280740634,
        "spy_trades": 4,
        "spy_avg_cash": 0.00244241779664,
        "spy_limit_refusals": 0,
        "spy_deposited": 14220.7383979,
        "spy_final_value": 12319.956508,
    },
    "in_sample": {
        "start": "2014-10-01",
        "end": "2014-12-31",
        "steps": 4,
        "months_per_s": 1.0,
        "xirr": 0.8075421717,
        "total_return": 0.144979074544,
        "twr_cagr": 0.69026024558,
        "volatility": 0.192341819363,
        "sharpe": 2.82628442759,
        "sortino": 4.62471016561,
        "max_drawdown": -0.0482506639948,
        "turnover": 3.46622473687,
        "fees": 31.42,
        "trades": 12,
        "avg_cash": 0.0417098159015,
        "limit_refusals": 0,
        "deposited": 8000.0,
        "final_value": 8972.56910694,
        "reversals": 7,
        "unjustified_reversals": 0,
        "targets_only_xirr": 0.837159153923,
        "targets_only_total_return": 0.149137818446,
        "targets_only_twr_cagr": 0.714186442979,
        "targets_only_volatility": 0.198360588998,
        "targets_only_sharpe": 2.81736935663,
        "targets_only_sortino": 4.59925275223,
        "targets_only_max_drawdown": -0.0495886319339,
        "targets_only_turnover": 3.61899133127,
        "targets_only_fees": 32.1505596366,
        "targets_only_trades": 12,
        "targets_only_avg_cash": 0.0121814252695,
        "targets_only_limit_refusals": 0,
        "targets_only_deposited": 8000.0,
        "targets_only_final_value": 9001.17604589,
        "equal_weight_xirr": 0.416376467436,
        "equal_weight_total_return": 0.0902970582804,
        "equal_weight_twr_cagr": 0.398165101557,
        "equal_weight_volatility": 0.167667474946,
        "equal_weight_sharpe": 2.08252445602,
        "equal_weight_sortino": 3.51582038185,
        "equal_weight_max_drawdown": -0.0409608048146,
        "equal_weight_turnover": 0.0,
        "equal_weight_fees": 19.8905399173,
        "equal_weight_trades": 12,
        "equal_weight_avg_cash": 0.0104000918741,
        "equal_weight_limit_refusals": 0,
        "equal_weight_deposited": 8000.0,
        "equal_weight_final_value": 8555.88815399,
        "spy_xirr": 0.197993127594,
        "spy_total_return": 0.0206125522362,
        "spy_twr_cagr": 0.0823134319095,
        "spy_volatility": 0.31112719226,
        "spy_sharpe": 0.40752211842,
        "spy_sortino": 0.584450495884,
        "spy_max_drawdown": -0.117421548132,
        "spy_turnover": 0.0,
        "spy_fees": 11.9582318895,
        "spy_trades": 4,
        "spy_avg_cash": 0.00281339466969,
        "spy_limit_refusals": 0,
        "spy_deposited": 8000.0,
        "spy_final_value": 8282.95441708,
    },
}


def figures_of(book: Ledger, prices: pd.DataFrame, out: Path) -> dict[str, Any]:
    report.write(book, prices, out, months_per_s=1.0)
    return json.loads((out / "report.json").read_text())


def test_a_usd_ledger_of_before_the_pairs_gives_the_figures_it_always_gave(tmp_path: Path):
    """USD_FIGURES: what the report said of `usd_book` before the daily rates and the pairs
    (a static FX_RATES in the settings, which the report no longer reads); a pair column in
    the prices, its rate moving, changes nothing for a USD investor who never exchanges."""
    book, prices = usd_book()
    moving = prices.assign(**{PAIR: np.linspace(1.35, 1.05, len(prices))})
    for label, frame in (("bare", prices), ("with_pair", moving)):
        doc = figures_of(book, frame, tmp_path / label)
        assert set(doc) == set(USD_FIGURES)
        for window, expected in USD_FIGURES.items():
            got = doc[window]
            for key, value in expected.items():
                assert got[key] == (pytest.approx(value, rel=1e-9, abs=1e-12) if isinstance(value, float) else value), (
                    label,
                    window,
                    key,
                )
            for run in ("", "targets_only_", "equal_weight_", "spy_"):
                assert got[f"{run}exchanges"] == 0 and got[f"{run}exchange_cost"] == 0, (label, window, run)
    assert PAIR not in {f.symbol for r in report.runs(book, moving).values() for f in r.trades}


def test_a_ledger_written_before_the_exchange_fee_loads_with_the_fee_schedules_defaults(tmp_path: Path):
    book, _ = usd_book()
    path = tmp_path / "ledger.json"
    book.save(path)
    doc = json.loads(path.read_text())
    del doc["fx_fee_rate"], doc["fx_fee_fixed"]
    path.write_text(json.dumps(doc))
    again = Ledger.load(path)
    fees = FeeSchedule()
    assert (again.fx_fee_rate, again.fx_fee_fixed) == (fees.fx_rate, fees.fx_fixed) == (Decimal("0.002"), 0)
    assert again == book
    env = {**driver.ENV, "TRADING_FX_FEE_RATE": "0.003", "TRADING_FX_FEE_FIXED": "0.5"}
    made = driver.new_ledger(date(2020, 1, 2), date(2020, 12, 31), env)
    assert (made.fx_fee_rate, made.fx_fee_fixed, made.base) == (Decimal("0.003"), Decimal("0.5"), "EUR")
    made.save(path)
    assert Ledger.load(path) == made


# -- a European investor ------------------------------------------------------------------------


def euro_ledger(
    steps: list[Step],
    end: pd.Timestamp | date,
    slippage: str = "0.001",
    fx_fee_rate: str = "0.002",
    fee_fixed: str = "0",
) -> Ledger:
    return Ledger(
        start=steps[0].day,
        end=end.date() if isinstance(end, pd.Timestamp) else end,
        base="EUR",
        fee_rate=Decimal(0),
        fee_fixed=Decimal(fee_fixed),
        fee_currency="EUR",
        slippage=Decimal(slippage),
        first_deposit=(Decimal(1000), "EUR"),
        monthly_deposit=(Decimal(500), "EUR"),
        settings={"BASE_CURRENCY": "EUR"},
        fx_fee_rate=Decimal(fx_fee_rate),
        steps=steps,
    )


def euro_step(
    on: pd.Timestamp,
    deposit: float,
    positions: dict[str, float],
    cash: dict[str, float],
    trades: list[Trade],
    targets: dict[str, float] | None = None,
) -> Step:
    return Step(
        day=on.date(),
        deposits={"EUR": Decimal(str(deposit))} if deposit else {},
        positions={k: Decimal(str(v)) for k, v in positions.items()},
        cash={c: Decimal(str(a)) for c, a in cash.items()},
        value_base=Decimal(0),
        trades=trades,
        targets=targets or {},
    )


def three_days() -> tuple[Ledger, pd.DataFrame]:
    """1000 EUR deposited at 1.25 USD per EUR, sold whole for USD at the rate less 0.1 %,
    0.2 % fee in USD; 5 AAA bought at 100 USD, 1 USD fee; the rate then 1.0 and 0.8."""
    d = days(3)
    prices = pd.DataFrame({"AAA.US": 100.0, "SPY.US": 400.0, PAIR: [1.25, 1.0, 0.8]}, index=d)
    sold = 1.25 * 0.999
    fee = round(1000 * sold * 0.002, 6)  # 2.4975
    usd = 1000 * sold - fee - 5 * 100 - 1  # 745.2525
    s = euro_step(
        d[0],
        1000,
        {"AAA.US": 5, PAIR: 0},
        {"EUR": 0, "USD": usd},
        [trade(PAIR, "sell", 1000, sold, fee), trade("AAA.US", "buy", 5, 100, 1)],
    )
    return euro_ledger([s], d[-1]), prices


def test_usd_cash_of_a_euro_investor_is_worth_what_each_days_rate_makes_it():
    book, prices = three_days()
    run = report.system_run(book, prices)
    usd = 745.2525
    assert list(run.values) == pytest.approx([(500 + usd) / 1.25, 500 + usd, (500 + usd) / 0.8])
    assert list(run.cash_share) == pytest.approx([usd / (500 + usd)] * 3)
    assert list(run.deposits) == [1000.0, 0.0, 0.0]
    assert [(f.symbol, f.price, f.fee) for f in run.trades] == [("AAA.US", pytest.approx(80), pytest.approx(0.8))]
    (x,) = run.exchanges
    assert (x.symbol, x.side, x.quantity, x.value) == (PAIR, "sell", 1000, pytest.approx(1000))
    assert x.fee == pytest.approx(2.4975 / 1.25) and x.spread == pytest.approx(1000 * 0.00125 / 1.25)
    m = report.metrics(run)
    assert (m["trades"], m["exchanges"], m["exchange_volume"]) == (1, 1, pytest.approx(1000))
    assert m["exchange_cost"] == pytest.approx(1.998 + 1.0) and m["fees"] == pytest.approx(0.8 + 1.998)
    assert m["turnover"] == 0  # the exchange is no sale: only a buy of a security


def test_without_a_rate_for_the_securities_currency_there_is_no_report():
    book, prices = three_days()
    with pytest.raises(ValueError, match="no rate for USD in EUR"):
        report.system_run(book, prices.drop(columns=PAIR))
    late = prices.assign(**{PAIR: [np.nan, 1.0, 0.8]})  # no close yet on the first day
    with pytest.raises(ValueError, match="USD"):
        report.system_run(book, late)


def test_a_usd_investor_values_euro_cash_at_each_days_rate():
    d = days(3)
    prices = pd.DataFrame({"AAA.US": 100.0, PAIR: [1.0, 1.2, 1.1]}, index=d)
    book = ledger([step(d[0], 1000, {}, 500)], d[-1])
    book.steps[0].cash["EUR"] = Decimal(400)
    assert list(report.system_run(book, prices).values) == pytest.approx([900, 980, 940])


def test_an_exchange_is_neither_a_trade_nor_a_reversal():
    d = days(60)
    prices = pd.DataFrame({"AAA.US": 100.0, "SPY.US": 400.0, PAIR: 1.1}, index=d)
    steps = [
        euro_step(
            d[0],
            1000,
            {"AAA.US": 5},
            {"USD": 597.8},
            [trade(PAIR, "sell", 1000, 1.0989, 2.2), trade("AAA.US", "buy", 5, 100)],
        ),
        euro_step(d[20], 0, {"AAA.US": 5}, {"EUR": 500, "USD": 47.8}, [trade(PAIR, "buy", 500, 1.1011, 0)]),
        euro_step(d[40], 0, {"AAA.US": 5}, {"USD": 597.8}, [trade(PAIR, "sell", 500, 1.1, 0)]),
    ]
    book = euro_ledger(steps, d[-1])
    assert report.reversals(book) == []
    m = report.metrics(report.system_run(book, prices))
    assert (m["trades"], m["exchanges"], m["turnover"]) == (1, 3, 0)
    assert m["exchange_volume"] == pytest.approx(2000)
    assert m["exchange_cost"] == pytest.approx((2.2 + 0.0011 * 1000 + 0.0011 * 500) / 1.1)


# -- the alternatives pay the exchange ----------------------------------------------------------


def two_deposits(fx_fee_rate: str = "0.002", slippage: str = "0.001") -> tuple[Ledger, pd.DataFrame]:
    d = days(30)
    prices = pd.DataFrame(
        {"AAA.US": 50.0, "BBB.US": np.linspace(20, 30, 30), "SPY.US": 100.0, PAIR: np.linspace(1.2, 1.0, 30)},
        index=d,
    )
    targets = {"AAA.US": 0.5, "BBB.US": 0.5}
    steps = [
        euro_step(d[0], 10000, {}, {"EUR": 10000}, [], targets),
        euro_step(d[20], 500, {}, {"EUR": 10500}, [], targets),
    ]
    return euro_ledger(steps, d[-1], slippage, fx_fee_rate, fee_fixed="1.2"), prices


def test_spy_exchanges_each_euro_deposit_at_the_days_rate_less_slippage_and_fee():
    book, prices = two_deposits()
    run = baselines.spy(book, prices)
    first, second = run.exchanges
    rate = float(prices[PAIR].iloc[20])
    usd = 10000 * 1.2 * 0.999 * (1 - 0.002)  # 11964.024
    assert (first.side, first.quantity, first.value) == ("sell", 10000, 10000)
    assert first.fee == pytest.approx(10000 * 1.2 * 0.999 * 0.002 / 1.2)
    assert first.spread == pytest.approx(10000 * 1.2 * 0.001 / 1.2)
    assert second.day == book.steps[1].day and second.fee == pytest.approx(500 * rate * 0.999 * 0.002 / rate)
    n = math.floor((usd - 1.2 * 1.2) / (100 * 1.001))  # the share fee: 1.20 EUR in USD at the day's rate
    assert run.trades[0].quantity == n == 119
    assert run.trades[0].price == pytest.approx(100.1 / 1.2) and run.trades[0].fee == pytest.approx(1.2)
    cash = usd - n * 100.1 - 1.2 * 1.2
    d = prices.index
    assert run.values[d[10]] == pytest.approx((n * 100 + cash) / float(prices.at[d[10], PAIR]))
    m = report.metrics(run)
    assert m["exchanges"] == 2 and m["exchange_cost"] == pytest.approx(first.cost + second.cost)
    assert m["fees"] == pytest.approx(sum(f.fee for f in run.trades) + first.fee + second.fee)


@pytest.mark.parametrize("alternative", [baselines.spy, baselines.equal_weight, baselines.targets_only])
def test_every_alternative_pays_the_same_exchanges_and_ends_lower_for_them(alternative):
    book, prices = two_deposits()
    free, _ = two_deposits(fx_fee_rate="0")
    paid, unpaid = alternative(book, prices), alternative(free, prices)
    spy = baselines.spy(book, prices)
    assert [(x.day, x.quantity, x.fee, x.spread) for x in paid.exchanges] == [
        (x.day, x.quantity, x.fee, x.spread) for x in spy.exchanges
    ]
    assert all(x.fee > 0 and x.spread > 0 for x in paid.exchanges)
    assert all(x.fee == 0 and x.spread > 0 for x in unpaid.exchanges)
    assert paid.values.iloc[-1] < unpaid.values.iloc[-1]
    assert PAIR not in {f.symbol for f in paid.trades}
    if alternative is not baselines.spy:
        assert {f.symbol for f in paid.trades} == {"AAA.US", "BBB.US"}


def test_the_summary_and_the_table_show_the_exchanges_and_their_cost(tmp_path: Path):
    book, prices = two_deposits()
    exchanged = trade(PAIR, "sell", 10000, 1.2 * 0.999, 23.98)  # the system keeps its USD in cash
    book.steps[0] = euro_step(prices.index[0], 10000, {}, {"USD": 11964.02}, [exchanged], book.steps[0].targets)
    whole = report.write(book, prices, tmp_path, months_per_s=1.0)
    assert whole["exchanges"] == 1 and whole["exchange_cost"] == pytest.approx((23.98 + 12) / 1.2)
    assert whole["exchange_volume"] == pytest.approx(10000) and whole["trades"] == 0
    for run in ("targets_only_", "equal_weight_", "spy_"):
        assert whole[f"{run}exchanges"] == 2 and whole[f"{run}exchange_cost"] > 0
    text = (tmp_path / "report.txt").read_text()
    assert text.splitlines()[0].startswith("Replay ") and "base EUR, deposits in EUR" in text.splitlines()[0]
    rows = {line[:16].strip(): line[16:].split() for line in text.splitlines()[4:]}
    assert rows["Exchanges"] == ["1", "2", "2", "2"]
    assert rows["Exchange cost"][0] == f"{whole['exchange_cost']:,.2f}"


def test_a_euro_investor_in_apple_over_2019_on_the_bundled_prices_and_rates():
    """10000 EUR exchanged into USD at the ECB's rate of the first trading day of 2019 less
    0.1 %, 0.2 % fee, all of it in whole Apple shares: each day's value is the USD holding at
    that day's rate; SPY's alternative pays the same exchange."""
    from nodes.universe import bundle

    prices = bundle.frame(pairs=True)
    year = prices.loc["2019-01-01":"2019-12-31"]
    on, rate = year.index[0], float(year[PAIR].iloc[0])
    sold = round(rate * 0.999, 6)
    fee = round(10000 * sold * 0.002, 2)
    usd = 10000 * sold - fee
    close = float(year["AAPL.US"].iloc[0])
    n = math.floor((usd - 1.5) / close)
    left = usd - n * close - 1.5
    s = euro_step(
        on,
        10000,
        {"AAPL.US": n},
        {"USD": left},
        [trade(PAIR, "sell", 10000, sold, fee), trade("AAPL.US", "buy", n, close, 1.5)],
    )
    book = euro_ledger([s], year.index[-1])
    run = report.system_run(book, prices)
    expected = (n * year["AAPL.US"] + left) / year[PAIR]
    assert np.allclose(run.values.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert 1.08 < year[PAIR].min() < year[PAIR].max() < 1.16  # the ECB's EUR/USD of 2019
    whole = report.summary(book, prices, months_per_s=1.0)
    assert (whole["exchanges"], whole["spy_exchanges"], whole["trades"]) == (1, 1, 1)
    assert whole["exchange_cost"] == pytest.approx(whole["spy_exchange_cost"], rel=1e-3)
    assert whole["exchange_cost"] == pytest.approx(20 + 10, rel=0.01)  # 0.2 % fee + 0.1 % spread of 10000 EUR
