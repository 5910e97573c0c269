"""The replay's report (`replay/report.py`, `baselines.py`, `plots.py`) on hand-made ledgers
and prices whose right answers can be worked out by hand, and one year of real prices."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from replay import baselines, plots, report
from replay.baselines import Fill, Run
from replay.ledger import Ledger, Refusal, Step, Trade

PNG = b"\x89PNG\r\n\x1a\n"
SUMMARY_KEYS = {
    "xirr",
    "sharpe",
    "max_drawdown",
    "turnover",
    "avg_cash",
    "limit_refusals",
    "targets_only_xirr",
    "spy_xirr",
    "spy_sharpe",
    "spy_max_drawdown",
    "months_per_s",
    "twr_cagr",
    "volatility",
    "sortino",
    "fees",
    "trades",
    "targets_only_turnover",
    "targets_only_sharpe",
    "equal_weight_xirr",
    "reversals",
    "unjustified_reversals",
    "start",
    "end",
}


def days(n: int, start: str = "2020-01-01") -> pd.DatetimeIndex:
    return pd.bdate_range(start, periods=n)


def step(
    on: pd.Timestamp | date,
    deposit: float = 0,
    positions: dict[str, float] | None = None,
    cash: float = 0,
    trades: Sequence[Trade] = (),
    targets: dict[str, float] | None = None,
    scores: dict[str, float] | None = None,
    refusals: Sequence[Refusal] = (),
) -> Step:
    return Step(
        day=on.date() if isinstance(on, pd.Timestamp) else on,
        deposits={"USD": Decimal(str(deposit))} if deposit else {},
        positions={k: Decimal(str(v)) for k, v in (positions or {}).items()},
        cash={"USD": Decimal(str(cash))},
        value_base=Decimal(0),
        trades=list(trades),
        refusals=list(refusals),
        targets=targets or {},
        scores=scores or {},
    )


def trade(symbol: str, side: str, quantity: float, price: float, fee: float = 0, currency: str = "USD") -> Trade:
    return Trade(symbol, side, Decimal(str(quantity)), Decimal(str(price)), Decimal(str(fee)), currency)


def ledger(
    steps: list[Step], end: pd.Timestamp | date, fee_rate: str = "0", fee_fixed: str = "0", slippage: str = "0"
) -> Ledger:
    return Ledger(
        start=steps[0].day,
        end=end.date() if isinstance(end, pd.Timestamp) else end,
        base="USD",
        fee_rate=Decimal(fee_rate),
        fee_fixed=Decimal(fee_fixed),
        fee_currency="USD",
        slippage=Decimal(slippage),
        first_deposit=(Decimal(1000), "USD"),
        monthly_deposit=(Decimal(1000), "USD"),
        settings={"EDGE_TEST": "1"},
        steps=steps,
    )


def held(run: Run, on: pd.Timestamp) -> dict[str, float]:
    """A baseline's shares after the trades of day `on`, from its fills."""
    shares: dict[str, float] = {}
    for f in run.trades:
        if pd.Timestamp(f.day) <= on:
            shares[f.symbol] = shares.get(f.symbol, 0.0) + (f.quantity if f.side == "buy" else -f.quantity)
    return {s: q for s, q in shares.items() if q}


def random_walks(n: int, symbols: Sequence[str], seed: int, start: str = "2020-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0005, 0.02, size=(n, len(symbols)))
    return pd.DataFrame(50 * np.exp(np.cumsum(steps, axis=0)), index=days(n, start), columns=list(symbols))


# -- the system's values ----------------------------------------------------------------------


def test_ten_shares_while_the_price_doubles_is_a_time_weighted_return_of_one():
    d = days(21)
    prices = pd.DataFrame({"AAA.US": np.linspace(100, 200, 21), "SPY.US": 300.0}, index=d)
    book = ledger([step(d[0], 1000, {"AAA.US": 10}, 0, [trade("AAA.US", "buy", 10, 100)])], d[-1])
    run = report.system_run(book, prices)
    assert run.values.iloc[0] == pytest.approx(1000) and run.values.iloc[-1] == pytest.approx(2000)
    m = report.metrics(run)
    assert m["total_return"] == pytest.approx(1.0)
    assert m["twr_cagr"] == pytest.approx(2 ** (252 / 20) - 1)
    assert m["xirr"] == pytest.approx(2 ** (365 / (d[-1] - d[0]).days) - 1, rel=1e-6)
    assert m["max_drawdown"] == pytest.approx(0.0)
    assert (m["trades"], m["fees"], m["avg_cash"], m["deposited"]) == (1, 0, 0, 1000)


def test_a_deposit_on_a_later_step_is_not_a_return():
    d = days(30)
    prices = pd.DataFrame({"AAA.US": [100.0] * 10 + [110.0] * 20}, index=d)
    book = ledger(
        [
            step(d[0], 1000, {"AAA.US": 10}, 0, [trade("AAA.US", "buy", 10, 100)]),
            step(d[10], 500, {"AAA.US": 10}, 500),
        ],
        d[-1],
    )
    run = report.system_run(book, prices)
    assert run.values[d[10]] == pytest.approx(1600)  # the deposit is in the day's value
    assert run.deposits[d[10]] == 500 and run.deposits.sum() == 1500
    m = report.metrics(run)
    assert m["total_return"] == pytest.approx(0.1)  # the price's 10 %, not (1600 - 1000) / 1000
    assert m["avg_cash"] == pytest.approx(20 * (500 / 1600) / 30)
    assert m["max_drawdown"] == pytest.approx(0.0)


def test_between_two_steps_the_earlier_account_is_held_from_the_first_step_to_the_end():
    d = days(20, "2019-12-27")
    prices = pd.DataFrame({"AAA.US": np.arange(20) + 100.0, "BBB.US": 50.0}, index=d)
    book = ledger(
        [
            step(d[2], 1000, {"AAA.US": 9}, 1000 - 9 * 102, [trade("AAA.US", "buy", 9, 102)]),
            step(d[6], 0, {"AAA.US": 4, "BBB.US": 2}, 98 + 5 * 106 - 100, [trade("AAA.US", "sell", 5, 106)]),
        ],
        d[15],
    )
    run = report.system_run(book, prices)
    assert run.values.index[0] == d[2] and run.values.index[-1] == d[15]  # neither before nor after
    assert run.values[d[4]] == pytest.approx(9 * 104 + 82)
    assert run.values[d[9]] == pytest.approx(4 * 109 + 2 * 50 + 528)
    assert run.cash_share[d[9]] == pytest.approx(528 / (4 * 109 + 100 + 528))


def test_cash_in_another_currency_needs_its_rate():
    d = days(5)
    prices = pd.DataFrame({"SAP.DE": 100.0, "AAA.US": 10.0, "EURUSD_T0.ITS": 1.1}, index=d)
    s = step(d[0], 0, {"SAP.DE": 1}, 0, [trade("SAP.DE", "buy", 1, 100, 1, "EUR")])
    s.cash["EUR"] = Decimal(50)
    book = ledger([s], d[-1])
    run = report.system_run(book, prices)  # EUR in USD: the pair's close, USD per EUR
    assert run.values.iloc[-1] == pytest.approx(110 + 55)
    assert run.trades[0].price == pytest.approx(110) and run.trades[0].fee == pytest.approx(1.1)
    with pytest.raises(ValueError, match="EUR"):
        report.system_run(book, prices.drop(columns="EURUSD_T0.ITS"))


def test_a_position_without_a_price_is_an_error():
    d = days(5)
    prices = pd.DataFrame({"AAA.US": [np.nan, np.nan, 10.0, 10.0, 10.0]}, index=d)
    with pytest.raises(ValueError, match=r"AAA\.US"):
        report.system_run(ledger([step(d[0], 0, {"AAA.US": 1})], d[-1]), prices)
    with pytest.raises(ValueError, match=r"ZZZ\.US"):
        report.system_run(ledger([step(d[0], 0, {"ZZZ.US": 1})], d[-1]), prices)


# -- the baselines -----------------------------------------------------------------------------


def test_spy_buys_what_the_cash_affords_after_fee_and_slippage():
    d = days(20)
    prices = pd.DataFrame({"AAA.US": 10.0, "SPY.US": [99.0] * 10 + [110.0] * 10}, index=d)
    book = ledger([step(d[0], 1000), step(d[10], 1000)], d[-1], fee_rate="0.001", fee_fixed="1", slippage="0.01")
    run = baselines.spy(book, prices)
    # 999 / (99.99 x 1.001) = 9.98 shares; then (98.19009 + 1000 - 1) / (111.1 x 1.001) = 9.87
    assert [(f.symbol, f.side, f.quantity) for f in run.trades] == [("SPY.US", "buy", 9.0), ("SPY.US", "buy", 9.0)]
    assert run.trades[0].price == pytest.approx(99.99) and run.trades[0].fee == pytest.approx(1.89991)
    cash = 1000 - 899.91 - 1.89991 + 1000 - 999.9 - 1.9999
    assert run.values[d[12]] == pytest.approx(18 * 110 + cash)
    assert run.cash_share[d[12]] == pytest.approx(cash / (18 * 110 + cash))
    assert run.values[d[5]] == pytest.approx(9 * 99 + 98.19009)


@pytest.mark.parametrize("seed", range(12))
def test_no_baseline_ever_spends_more_cash_than_there_is(seed):
    rng = np.random.default_rng(seed)
    prices = random_walks(120, ["AAA.US", "BBB.US", "CCC.US", "SPY.US"], seed)
    prices *= rng.uniform(1, 40, size=4)  # some shares dearer than a deposit
    steps = []
    for k, on in enumerate(prices.index[::20]):
        weights = rng.dirichlet(np.ones(3)) * rng.uniform(0.9, 1.1)  # targets summing to about 1
        targets = dict(zip(["AAA.US", "BBB.US", "CCC.US"], weights.tolist(), strict=True))
        steps.append(step(on, float(rng.uniform(50, 3000)) if k else 500.0, targets=targets))
    book = ledger(steps, prices.index[-1], fee_rate="0.002", fee_fixed=str(rng.uniform(0, 5)), slippage="0.003")
    for run in (
        baselines.spy(book, prices),
        baselines.equal_weight(book, prices),
        baselines.targets_only(book, prices),
    ):
        assert (run.cash_share.dropna() >= 0).all(), run.name
        assert (run.values > 0).all(), run.name
        assert all(f.quantity == int(f.quantity) and f.quantity > 0 for f in run.trades), run.name


def test_equal_weight_spreads_over_the_stocks_with_a_price_and_never_spy():
    d = days(30)
    prices = pd.DataFrame(
        {"AAA.US": 10.0, "BBB.US": np.linspace(20, 40, 30), "CCC.US": [np.nan] * 10 + [5.0] * 20, "SPY.US": 100.0},
        index=d,
    )
    book = ledger([step(d[0], 10000), step(d[10], 10000)], d[-1])
    run = baselines.equal_weight(book, prices)
    first, second = held(run, d[0]), held(run, d[10])
    assert set(first) == {"AAA.US", "BBB.US"} and set(second) == {"AAA.US", "BBB.US", "CCC.US"}
    for shares, on in ((first, d[0]), (second, d[10])):
        value = run.values[on]
        for s, q in shares.items():
            assert q * prices.at[on, s] / value == pytest.approx(1 / len(shares), abs=prices.at[on, s] / value)
    assert "SPY.US" not in {f.symbol for f in run.trades}


def test_targets_only_ends_close_to_the_targets_selling_first():
    d = days(40)
    prices = pd.DataFrame({"AAA.US": np.linspace(10, 30, 40), "BBB.US": 25.0, "CCC.US": 40.0, "SPY.US": 1.0}, index=d)
    book = ledger(
        [
            step(d[0], 20000, targets={"AAA.US": 0.6, "BBB.US": 0.4}),
            step(d[20], 1000, targets={"AAA.US": 0.2, "BBB.US": 0.3, "CCC.US": 0.5}),
            step(d[30], 1000),  # no targets: hold, the deposit waits in cash
        ],
        d[-1],
        fee_rate="0.001",
        fee_fixed="1",
        slippage="0.001",
    )
    run = baselines.targets_only(book, prices)
    on = d[20]
    shares = held(run, on)
    weights = {s: q * prices.at[on, s] / run.values[on] for s, q in shares.items()}
    assert weights == pytest.approx({"AAA.US": 0.2, "BBB.US": 0.3, "CCC.US": 0.5}, abs=0.01)
    sides = [f.side for f in run.trades if pd.Timestamp(f.day) == on]
    assert sides.index("buy") > max(i for i, s in enumerate(sides) if s == "sell")
    assert not [f for f in run.trades if pd.Timestamp(f.day) == d[30]]
    assert run.cash_share[d[30]] > run.cash_share[d[29]]


# -- metrics -----------------------------------------------------------------------------------


def two_years(values_2021: float, values_2022: float, fills: list[Fill]) -> Run:
    index = pd.DatetimeIndex(
        [*pd.bdate_range("2021-01-01", "2021-12-31")[-252:], *pd.bdate_range("2022-01-03", periods=252)]
    )
    values = pd.Series([values_2021] * 252 + [values_2022] * 252, index=index)
    deposits = pd.Series(0.0, index=index)
    deposits.iloc[0] = values_2021
    deposits.iloc[252] = values_2022 - values_2021
    return Run("hand", values, deposits, pd.Series(0.25, index=index), fills)


def test_turnover_is_the_lesser_of_purchases_and_sales_over_the_years_average_value():
    fills = [
        Fill(date(2021, 3, 1), "A", "buy", 5, 100, 1),
        Fill(date(2021, 6, 1), "A", "sell", 2, 100, 1),
        Fill(date(2022, 3, 1), "A", "buy", 1, 100, 1),
        Fill(date(2022, 6, 1), "A", "sell", 6, 100, 1.5),
    ]
    run = two_years(1000, 2000, fills)
    # 2021: min(500, 200) / 1000 = 0.2; 2022: min(100, 600) / 2000 = 0.05; over two years
    assert report.turnover(run) == pytest.approx((0.2 + 0.05) / 2)
    assert report.turnover(run, years=1) == pytest.approx(0.25)
    assert report.turnover(two_years(1000, 2000, [f for f in fills if f.side == "buy"])) == 0
    m = report.metrics(run, refusals=3)
    assert (m["fees"], m["trades"], m["avg_cash"], m["limit_refusals"]) == (4.5, 4, 0.25, 3)


def test_metrics_are_all_there_and_finite():
    prices = random_walks(300, ["AAA.US", "SPY.US"], 7)
    d = prices.index
    shares = math.floor(10000 / prices.iloc[0, 0])
    book = ledger([step(d[0], 10000, {"AAA.US": shares}, 10000 - shares * prices.iloc[0, 0])], d[-1])
    m = report.metrics(report.system_run(book, prices))
    assert set(m) >= {"xirr", "twr_cagr", "volatility", "sharpe", "sortino", "max_drawdown", "turnover", "fees"}
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in m.values())
    assert -1 < m["max_drawdown"] < 0 < m["volatility"]


# -- reversals ---------------------------------------------------------------------------------


def test_reversals_count_the_undone_trades_and_a_moved_target_or_score_justifies_one():
    t0 = {"AAA.US": 0.3, "BBB.US": 0.3, "CCC.US": 0.4}
    steps = [
        step(
            date(2020, 1, 2),
            trades=[trade("AAA.US", "buy", 5, 10), trade("BBB.US", "buy", 5, 10), trade("CCC.US", "buy", 5, 10)],
            targets=t0,
            scores={"AAA.US": 50, "BBB.US": 50, "CCC.US": 50},
        ),
        step(
            date(2020, 2, 3),
            trades=[trade("AAA.US", "sell", 1, 10), trade("AAA.US", "sell", 1, 10), trade("BBB.US", "sell", 1, 10)],
            targets={**t0, "BBB.US": 0.25},  # BBB's weight moved 5 points: justified
            scores={"AAA.US": 55, "BBB.US": 50, "CCC.US": 50},  # AAA's score moved 5: not enough
        ),
        step(date(2020, 3, 2), trades=[trade("AAA.US", "buy", 2, 10)], targets=t0, scores={"AAA.US": 70}),
        step(date(2020, 10, 1), trades=[trade("CCC.US", "sell", 5, 10)], targets=t0),  # 9 months on: no
    ]
    found = report.reversals(ledger(steps, date(2020, 12, 31)))
    assert [(r.day, r.symbol, r.earlier, r.justified) for r in found] == [
        (date(2020, 2, 3), "AAA.US", date(2020, 1, 2), False),
        (date(2020, 2, 3), "BBB.US", date(2020, 1, 2), True),
        (date(2020, 3, 2), "AAA.US", date(2020, 2, 3), True),  # the score moved 15
    ]
    assert found[1].target_move == pytest.approx(0.05) and found[2].score_move == pytest.approx(15)
    stricter = report.reversals(ledger(steps, date(2020, 12, 31)), target_move=0.1, score_move=20)
    assert [r.justified for r in stricter] == [False, False, False]
    assert len(report.reversals(ledger(steps, date(2020, 12, 31)), days=400)) == 4


# -- the table, the summary, the files ----------------------------------------------------------


def test_the_table_has_a_column_per_run_and_percentages():
    rows = {
        "System": {"xirr": 0.1234, "sharpe": 1.5, "trades": 7, "fees": 1234.5, "max_drawdown": -0.2},
        "SPY": {"xirr": 0.05, "sharpe": None, "trades": 3, "fees": 0.0, "max_drawdown": -0.3},
    }
    text = report.table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["System", "SPY"]
    assert len({len(line) for line in lines}) == 1  # fixed width
    by_label = {line[:15].strip(): line[15:].split() for line in lines[2:]}
    assert by_label["XIRR"] == ["12.34%", "5.00%"]
    assert by_label["Sharpe"] == ["1.50", "n/a"]
    assert by_label["Max drawdown"] == ["-20.00%", "-30.00%"]
    assert by_label["Fees"] == ["1,234.50", "0.00"]
    assert by_label["Trades"] == ["7", "3"]
    assert by_label["Limit refusals"] == ["n/a", "n/a"]


def doubling_then_flat() -> tuple[Ledger, pd.DataFrame]:
    """AAA doubles over January 2020 and stays; a deposit at each of two steps buys it."""
    d = pd.bdate_range("2020-01-02", "2020-03-31")
    january = int((d < pd.Timestamp("2020-02-03")).sum())
    a = np.concatenate([np.linspace(100, 200, january), np.full(len(d) - january, 200.0)])
    prices = pd.DataFrame({"AAA.US": a, "BBB.US": 50.0, "SPY.US": 300.0}, index=d)
    refused = Refusal("AAA.US", "buy", Decimal(100), "too much in one day")
    steps = [
        step(d[0], 1000, {"AAA.US": 10}, 0, [trade("AAA.US", "buy", 10, 100)], {"AAA.US": 1.0}, refusals=[refused]),
        step(date(2020, 2, 3), 1000, {"AAA.US": 15}, 0, [trade("AAA.US", "buy", 5, 200)], {"AAA.US": 1.0}),
    ]
    return ledger(steps, d[-1]), prices


def test_a_window_starts_with_the_value_of_its_first_step_as_its_deposit():
    book, prices = doubling_then_flat()
    whole = report.summary(book, prices, months_per_s=2.0)
    later = report.summary(book, prices, months_per_s=2.0, window=(date(2020, 2, 1), date(2020, 3, 31)))
    assert set(whole) >= SUMMARY_KEYS and set(later) >= SUMMARY_KEYS
    assert (whole["start"], later["start"], later["end"]) == ("2020-01-02", "2020-02-03", "2020-03-31")
    assert whole["total_return"] == pytest.approx(1.0) and whole["xirr"] > 1
    assert later["total_return"] == pytest.approx(0.0) and later["xirr"] == pytest.approx(0.0, abs=1e-9)
    assert later["deposited"] == pytest.approx(3000) and whole["deposited"] == pytest.approx(2000)
    assert (whole["limit_refusals"], later["limit_refusals"], later["trades"]) == (1, 0, 1)
    assert later["spy_total_return"] == pytest.approx(0.0) and later["months_per_s"] == 2.0
    json.dumps(whole, allow_nan=False)


def test_plots_write_png_files(tmp_path: Path):
    book, prices = doubling_then_flat()
    runs = list(report.runs(book, prices).values())
    plots.equity(runs, tmp_path / "equity.png")
    plots.equity(runs, tmp_path / "log.png", log=True)
    plots.drawdowns(runs, tmp_path / "drawdowns.png")
    for name in ("equity.png", "log.png", "drawdowns.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    assert plots.drawdown(runs[0]).min() == pytest.approx(0.0)


def test_write_makes_the_tables_the_json_and_the_plots_with_both_halves_around_2015(tmp_path: Path):
    prices = random_walks(90, ["AAA.US", "BBB.US", "SPY.US"], 3, start="2014-11-03")
    d = prices.index
    steps = [step(on, 1000, {}, 1000 * (k + 1), targets={"AAA.US": 0.5, "BBB.US": 0.5}) for k, on in enumerate(d[::21])]
    book = ledger(steps, d[-1])
    whole = report.write(book, prices, tmp_path / "out", months_per_s=1.5)
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(doc) == {"whole", "out_of_sample", "in_sample"} and doc["whole"] == whole
    assert doc["out_of_sample"]["start"] >= "2015-01-01" and doc["in_sample"]["end"] <= "2014-12-31"
    text = (tmp_path / "out" / "report.txt").read_text()
    assert text.count("Targets only") == 3 and "Out of sample" in text and "In sample" in text
    assert whole["avg_cash"] == pytest.approx(1.0) and whole["xirr"] == pytest.approx(0.0, abs=1e-9)
    for name in ("equity.png", "drawdowns.png"):
        assert (tmp_path / "out" / name).read_bytes().startswith(PNG)
    only_2015 = ledger(steps[-2:], d[-1])
    report.write(only_2015, prices, tmp_path / "later", months_per_s=1.5)
    assert set(json.loads((tmp_path / "later" / "report.json").read_text())) == {"whole"}


def test_the_ledger_round_trip_gives_back_an_equal_ledger(tmp_path: Path):
    book, _ = doubling_then_flat()
    book.steps[1].notes.append("bought AAA")
    path = tmp_path / "ledger.json"
    book.save(path)
    again = Ledger.load(path)
    assert again == book
    assert isinstance(again.steps[0].trades[0].price, Decimal) and again.first_deposit == (Decimal(1000), "USD")


# -- real prices -------------------------------------------------------------------------------


def test_all_cash_into_apple_every_month_of_2019_on_the_bundled_prices():
    from nodes.universe import bundle

    prices = bundle.frame(pairs=True)  # the EUR/USD pair too: it moves nothing of a USD investor's
    aapl = prices["AAPL.US"].loc["2019-01-01":"2019-12-31"]
    month_starts = set(aapl.index.to_series().groupby(aapl.index.month).min())
    rate, fixed, slip = 0.001, 1.0, 0.0005
    shares, cash, steps = 0, 0.0, []
    values, flows = [], []
    for on, close in aapl.items():
        deposit = 1000.0 if on in month_starts else 0.0
        if deposit:
            cash += deposit
            price = close * (1 + slip)
            n = math.floor((cash - fixed) / (price * (1 + rate)))
            fee = n * price * rate + fixed
            cash -= n * price + fee
            shares += n
            steps.append(step(on, deposit, {"AAPL.US": shares}, cash, [trade("AAPL.US", "buy", n, price, fee)]))
        values.append(shares * close + cash)
        flows.append(deposit)
    summary = report.summary(ledger(steps, date(2019, 12, 31), "0.001", "1", "0.0005"), prices, months_per_s=4.0)

    v, f = np.array(values), np.array(flows)
    wealth = np.cumprod((v[1:] - f[1:]) / v[:-1])
    drawdown = (np.concatenate([[1.0], wealth]) / np.maximum.accumulate(np.concatenate([[1.0], wealth])) - 1).min()
    years = np.array([(on - aapl.index[0]).days / 365 for on in aapl.index])
    paid = [(t, -x) for t, x in zip(years, f, strict=True) if x] + [(years[-1], v[-1])]
    lo, hi = -0.99, 10.0  # the NPV falls as the rate rises: bisect
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(x / (1 + mid) ** t for t, x in paid) > 0 else (lo, mid)
    assert len(steps) == 12 and summary["trades"] == 12 and summary["deposited"] == pytest.approx(12000)
    assert summary["xirr"] == pytest.approx(lo, abs=1e-6)
    assert summary["max_drawdown"] == pytest.approx(drawdown, abs=1e-9)
    assert summary["final_value"] == pytest.approx(v[-1])
    assert summary["spy_trades"] == 12 and summary["spy_turnover"] == 0
    assert 0.5 < summary["xirr"] < 2  # Apple nearly doubled in 2019
