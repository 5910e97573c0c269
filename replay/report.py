"""How a replay's money did, from its ledger and the prices alone: the system's daily value
rebuilt from the ledger, the same deposits in three simple alternatives (`baselines.py`), the
figures of each (XIRR, time-weighted CAGR, risk, turnover, fees, idle cash, the currency
exchanges and what they cost), the trades that undid a recent trade, a text table, a JSON
summary and the plots (`plots.py`).

Pure apart from `write`. Amounts are floats in the ledger's base currency, each converted at
its own day's rate: the rates come from the prices' currency-pair columns (`EURUSD_T0.ITS`,
USD per EUR; `baselines.Rates`), so cash held in USD by a EUR investor moves in value with
the rate between two steps. A pair column is never a security: not a position, not a trade,
not turnover, not a reversal; an exchange is counted apart. Every figure is a fraction (0.05
is 5 %), the table alone writes percentages. The statistics are empyrical's over the daily
time-weighted returns (252 trading days a year, risk-free rate 0)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import empyrical
import pandas as pd

from dashboard.figures import xirr
from nodes.money import pairs

from . import baselines, plots
from .baselines import Exchange, Fill, Rates, Run, Snapshot, twr_returns
from .ledger import Ledger, Step, Trade
from .rows import ROWS, Kind

SYSTEM = "System"
TRADING_DAYS = 252  # a year of daily returns (empyrical's default)
SPLIT = date(2015, 1, 1)  # the out-of-sample half starts here (the nodes' settings were tuned before)

REVERSAL_DAYS = 91  # a trade undoing one of the last three months is a reversal ...
TARGET_MOVE = 0.02  # ... justified when the target weight moved by more than 2 points of weight
SCORE_MOVE = 10.0  # ... or the composite score (0-100) by more than 10 points


def system_run(ledger: Ledger, prices: pd.DataFrame) -> Run:
    """The system's value on every day: each step's positions and cash per currency (after its
    trades) held until the next step, positions at the day's close and cash at the day's rate,
    deposits on their step day at its rate. Its exchanges (trades of a pair) are apart from
    its trades: they moved cash between currencies, which the step's cash already shows."""
    rates = baselines.rates_of(ledger, prices)
    snapshots = [
        Snapshot(
            s.day,
            {k: float(v) for k, v in s.positions.items() if v and not pairs.is_pair(k)},
            {c: float(a) for c, a in s.cash.items()},
            baselines.deposit_of(s, rates),
        )
        for s in ledger.steps
    ]
    fills = [
        Fill(
            s.day,
            t.symbol,
            t.side,
            float(t.quantity),
            rates.to_base(float(t.price), t.currency, s.day),
            rates.to_base(float(t.fee), t.currency, s.day),
        )
        for s in ledger.steps
        for t in s.trades
        if not pairs.is_pair(t.symbol)
    ]
    exchanges = [exchange(s.day, t, rates) for s in ledger.steps for t in s.trades if pairs.is_pair(t.symbol)]
    return baselines.daily(SYSTEM, snapshots, fills, baselines.closes(ledger, prices, rates), rates, exchanges)


def exchange(day: date, trade: Trade, rates: Rates) -> Exchange:
    """A ledger's trade of a pair in the base: its value at the day's rate of the pair's base
    currency, its fee, and its spread: |fill price - the day's close of the pair| x quantity
    (in the pair's quote currency, converted)."""
    pair = pairs.parse(trade.symbol)
    assert pair is not None and trade.currency == pair.quote
    return Exchange.filled(day, pair, trade.side, float(trade.quantity), float(trade.price), float(trade.fee), rates)


def runs(ledger: Ledger, prices: pd.DataFrame) -> dict[str, Run]:
    """The system and its three alternatives, in the table's order."""
    found = [
        system_run(ledger, prices),
        baselines.targets_only(ledger, prices),
        baselines.equal_weight(ledger, prices),
        baselines.spy(ledger, prices),
    ]
    return {r.name: r for r in found}


# -- figures ---------------------------------------------------------------------------------


def turnover(run: Run, years: float | None = None) -> float | None:
    """Turnover per year, the SEC's way (Form N-1A): in each calendar year the lesser of the
    purchases and the sales, divided by the year's average daily value; those ratios summed
    and divided by the years covered (`years`, else the run's days / 252). The lesser of the two
    leaves out buying with new deposits: a run that only ever buys has turnover 0. A part year
    counts as the part it is, so the figure stays a yearly one."""
    span = years if years is not None else len(run.values) / TRADING_DAYS
    if span <= 0:
        return None
    average = run.values.groupby(run.values.index.year).mean()
    bought: dict[int, float] = {}
    sold: dict[int, float] = {}
    for f in run.trades:
        side = bought if f.side == "buy" else sold
        side[f.day.year] = side.get(f.day.year, 0.0) + f.value
    ratios = [min(bought.get(y, 0.0), sold.get(y, 0.0)) / v for y, v in average.items() if v > 0]
    return sum(ratios) / span


def metrics(run: Run, refusals: int = 0, years: float | None = None) -> dict[str, Any]:
    """The figures of one run (fractions; None where there is too little to say):

    xirr: the money-weighted annual return of the investor's flows (each deposit paid in on
      its day, the last value taken out on the last day), calendar days / 365.
    total_return, twr_cagr: the time-weighted return over the run and per year (empyrical's
      cum_returns and annual_return of `twr_returns`): what the deposits' timing does not move.
    volatility, sharpe, sortino, max_drawdown: empyrical's, of the same returns (risk-free 0;
      max_drawdown is negative, -0.3 a 30 % fall from a peak).
    turnover: per year, see `turnover` (the securities' trades: an exchange is no purchase or
      sale of a security). fees: every fee paid (base), the securities' trades' and the
      exchanges'. trades: the securities' fills (exchanges not counted).
    exchanges: the currency exchanges; exchange_volume: their value (base, at the day's
      rate); exchange_cost: their fees plus their spreads (fill price against the day's close
      of the pair), base: what changing currency cost.
    avg_cash: the mean over the days of cash / value. limit_refusals: as given.
    deposited, final_value: the money put in, the last day's value (base)."""
    r = twr_returns(run)
    flows = [(d.date(), -float(f)) for d, f in run.deposits.items() if f]
    last_day, last_value = run.values.index[-1].date(), float(run.values.iloc[-1])
    some = len(r) > 0
    return {
        "xirr": _finite(xirr([*flows, (last_day, last_value)])),
        "total_return": _finite(empyrical.cum_returns(r).iloc[-1]) if some else None,
        "twr_cagr": _finite(empyrical.annual_return(r)) if some else None,
        "volatility": _finite(empyrical.annual_volatility(r)) if len(r) > 1 else None,
        "sharpe": _finite(empyrical.sharpe_ratio(r, risk_free=0)) if len(r) > 1 else None,
        "sortino": _finite(empyrical.sortino_ratio(r)) if len(r) > 1 else None,
        "max_drawdown": _finite(empyrical.max_drawdown(r)) if some else None,
        "turnover": turnover(run, years),
        "fees": sum(f.fee for f in run.trades) + sum(x.fee for x in run.exchanges),
        "trades": len(run.trades),
        "exchanges": len(run.exchanges),
        "exchange_volume": sum(x.value for x in run.exchanges),
        "exchange_cost": sum(x.cost for x in run.exchanges),
        "avg_cash": _finite(run.cash_share.mean()),
        "limit_refusals": refusals,
        "deposited": float(run.deposits.sum()),
        "final_value": last_value,
    }


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# -- reversals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reversal:
    """A step's trade in the other direction than the security's latest earlier trade."""

    day: date
    symbol: str
    side: str  # this trade's
    earlier: date  # the day of the trade it undoes
    target_move: float | None  # |weight now - weight then| (None: a step without targets)
    score_move: float | None  # |score now - score then| (None: unscored at one of them)
    justified: bool


def reversals(
    ledger: Ledger, days: int = REVERSAL_DAYS, score_move: float = SCORE_MOVE, target_move: float = TARGET_MOVE
) -> list[Reversal]:
    """The trades that undo a trade of the same security less than `days` days before: the
    security's latest earlier trade (its step's net side) was the other side. One is justified
    when, between the two steps, its target weight moved by more than `target_move` (absolute
    weight; a security missing from a step's targets has weight 0) or its composite score by
    more than `score_move` points. Partial fills of one step count once; an exchange (a pair's
    trade) is never one. The defaults are REVERSAL_DAYS (91), TARGET_MOVE (0.02) and
    SCORE_MOVE (10)."""
    latest: dict[str, tuple[int, str]] = {}  # symbol -> (step index, side) of its latest trade
    found = []
    for j, step in enumerate(ledger.steps):
        for symbol, side in _net_sides(step).items():
            if symbol in latest:
                i, before = latest[symbol]
                then = ledger.steps[i]
                if before != side and (step.day - then.day).days < days:
                    t_move = _move(then.targets, step.targets, symbol, 0.0) if then.targets and step.targets else None
                    s_move = _move(then.scores, step.scores, symbol, None)
                    why = (t_move is not None and t_move > target_move) or (s_move is not None and s_move > score_move)
                    found.append(Reversal(step.day, symbol, side, then.day, t_move, s_move, why))
            latest[symbol] = (j, side)
    return found


def _net_sides(step: Step) -> dict[str, str]:
    net: dict[str, float] = {}
    for t in step.trades:
        if pairs.is_pair(t.symbol):
            continue
        net[t.symbol] = net.get(t.symbol, 0.0) + (float(t.quantity) if t.side == "buy" else -float(t.quantity))
    return {s: "buy" if q > 0 else "sell" for s, q in net.items() if q}


def _move(then: Mapping[str, float], now: Mapping[str, float], symbol: str, missing: float | None) -> float | None:
    a, b = then.get(symbol, missing), now.get(symbol, missing)
    return None if a is None or b is None else abs(float(b) - float(a))


# -- the table -------------------------------------------------------------------------------


def _percent(x: Any) -> str:
    return f"{100 * x:.2f}%"


def _ratio(x: Any) -> str:
    return f"{x:.2f}"


def _money(x: Any) -> str:
    return f"{x:,.2f}"


def _count(x: Any) -> str:
    return f"{int(x):d}"


SHOW: dict[Kind, Callable[[Any], str]] = {"percent": _percent, "ratio": _ratio, "money": _money, "count": _count}


def table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """A fixed-width text table: a column per run (the keys, in order), a row per figure;
    fractions as percentages, 'n/a' for a figure there was too little to compute."""
    cells = [
        [label, *("n/a" if m.get(key) is None else SHOW[kind](m[key]) for m in rows.values())]
        for label, key, kind in ROWS
    ]
    head = ["", *rows]
    widths = [max(len(line[k]) for line in [head, *cells]) for k in range(len(head))]

    def line(parts: list[str]) -> str:
        return "  ".join([parts[0].ljust(widths[0]), *(p.rjust(w) for p, w in zip(parts[1:], widths[1:], strict=True))])

    rule = "-" * len(line(head))
    return "\n".join([line(head), rule, *(line(c) for c in cells)]) + "\n"


# -- summary and files -----------------------------------------------------------------------


def summary(
    ledger: Ledger,
    prices: pd.DataFrame,
    months_per_s: float,
    window: tuple[date, date] | None = None,
) -> dict[str, Any]:
    """The JSON figures of a replay (see `metrics`): the system's unprefixed, each alternative's
    prefixed (targets_only_, equal_weight_, spy_), the reversals, the dates and the replay's
    speed. `window` (first, last day) restricts everything to its steps and days; the value on
    its first step day counts as the window's first deposit (what the window starts with).
    `prices`: the closes (dates x symbols) with the pair columns the rates come from."""
    return _compare(ledger, runs(ledger, prices), months_per_s, window)[0]


def write(
    ledger: Ledger,
    prices: pd.DataFrame,
    out_dir: Path,
    months_per_s: float,
) -> dict[str, Any]:
    """report.txt (the tables), report.json (the summaries) and the plots in `out_dir`, for
    the whole ledger and, when it starts before 2015 and reaches it, the out-of-sample half
    (2015 on) and the in-sample half; returns the whole ledger's summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    every = runs(ledger, prices)
    first, last = ledger.steps[0].day, next(iter(every.values())).values.index[-1].date()
    windows: dict[str, tuple[date, date] | None] = {"whole": None}
    if first < SPLIT <= last:
        windows["out_of_sample"] = (SPLIT, last)
        windows["in_sample"] = (first, date(SPLIT.year - 1, 12, 31))
    fees = f"fees {100 * float(ledger.fee_rate):.3g}% + {ledger.fee_fixed} {ledger.fee_currency}"
    fx = f"exchanges {100 * float(ledger.fx_fee_rate):.3g}% + {ledger.fx_fee_fixed} {ledger.fee_currency}"
    text = [
        f"Replay {first} .. {last}: {len(ledger.steps)} steps, base {ledger.base}, "
        f"deposits in {', '.join(deposit_currencies(ledger))}, {fees}, {fx}, "
        f"slippage {100 * float(ledger.slippage):.3g}%, {months_per_s:.3g} months/s\n"
    ]
    doc = {}
    for label, window in windows.items():
        figures, rows = _compare(ledger, every, months_per_s, window)
        doc[label] = figures
        title = f"{label.replace('_', ' ').capitalize()}: {figures['start']} .. {figures['end']}"
        text += [
            title,
            table(rows),
            f"Reversals within {REVERSAL_DAYS} days: {figures['reversals']} "
            f"(unjustified: {figures['unjustified_reversals']})\n",
        ]
    (out_dir / "report.txt").write_text("\n".join(text))
    (out_dir / "report.json").write_text(json.dumps(doc, indent=1))
    plots.equity(list(every.values()), out_dir / "equity.png", log=True, currency=ledger.base)
    plots.drawdowns(list(every.values()), out_dir / "drawdowns.png")
    return doc["whole"]


def deposit_currencies(ledger: Ledger) -> list[str]:
    """The currencies the steps' deposits came in (the ledger's planned ones if none came)."""
    found = {c for s in ledger.steps for c, a in s.deposits.items() if a}
    return sorted(found or {ledger.first_deposit[1], ledger.monthly_deposit[1]})


def _compare(
    ledger: Ledger, every: Mapping[str, Run], months_per_s: float, window: tuple[date, date] | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The summary and the table's rows (run name -> metrics) of one window."""
    part = ledger if window is None else _steps_within(ledger, window)
    first = pd.Timestamp(part.steps[0].day)
    last = pd.Timestamp(window[1]) if window is not None else None
    rows = {}
    for name, run in every.items():
        refused = sum(len(s.refusals) for s in part.steps) if name == SYSTEM else 0
        rows[name] = metrics(window_of(run, first, last), refused)
    system = rows[SYSTEM]
    days = window_of(every[SYSTEM], first, last).values.index
    found = reversals(part)
    out: dict[str, Any] = {
        "start": days[0].date().isoformat(),
        "end": days[-1].date().isoformat(),
        "steps": len(part.steps),
        "months_per_s": months_per_s,
        **system,
        "reversals": len(found),
        "unjustified_reversals": sum(not r.justified for r in found),
    }
    for name, figures in rows.items():
        if name != SYSTEM:
            out |= {f"{_key(name)}_{k}": v for k, v in figures.items()}
    return out, rows


def _key(name: str) -> str:
    return name.lower().replace(" ", "_")


def _steps_within(ledger: Ledger, window: tuple[date, date]) -> Ledger:
    inside = [s for s in ledger.steps if window[0] <= s.day <= window[1]]
    if not inside:
        raise ValueError(f"no step between {window[0]} and {window[1]}")
    return dataclasses.replace(ledger, steps=inside)


def window_of(run: Run, first: pd.Timestamp, last: pd.Timestamp | None = None) -> Run:
    """The run from day `first` to `last`, as if the account had been opened with that day's
    value: it is the window's first deposit (a run's own first day keeps its real deposit)."""
    if first == run.values.index[0] and last is None:
        return run
    values = run.values.loc[first:last]
    deposits = run.deposits.loc[first:last].copy()
    if first != run.values.index[0]:
        deposits.iloc[0] = values.iloc[0]
    end = values.index[-1].date()
    trades = [f for f in run.trades if first.date() <= f.day <= end]
    exchanges = [x for x in run.exchanges if first.date() <= x.day <= end]
    return Run(run.name, values, deposits, run.cash_share.loc[first:last], trades, exchanges)
