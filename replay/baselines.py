"""Simple alternatives to the system, each given the ledger's own deposits on its own step days
and paying its fees and slippage at the same closes: SPY bought with every deposit, equal
weights over the stocks, and the optimiser's targets followed exactly. What they earn is the
bar the system's decisions have to clear.

Also the day-by-day account both the system and the alternatives are measured from (`Run`):
between two steps the earlier step's shares and cash are held. Pure: pandas and numpy, no MQTT.
Every amount is a float in the base currency (closes and fees converted through `rates`:
per unit, in the base; a currency equal to the base needs no rate)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd

from .ledger import Ledger, Step

BENCHMARK = "SPY.US"  # the only column of the bundled prices that is not one of the stocks


@dataclass(frozen=True)
class Fill:
    """One trade of a run, in the base currency."""

    day: date
    symbol: str
    side: str  # buy | sell
    quantity: float
    price: float  # per share, slippage included
    fee: float

    @property
    def value(self) -> float:
        return self.quantity * self.price


@dataclass(frozen=True, eq=False)
class Run:
    """One way of investing the deposits, day by day over the trading days from the first step
    day to the ledger's end: what the report measures and plots."""

    name: str
    values: pd.Series  # per day: holdings at the close plus cash, after the day's deposits and trades
    deposits: pd.Series  # per day: money put in (0 except on step days), already in that day's value
    cash_share: pd.Series  # per day: cash / value (NaN while the value is 0)
    trades: list[Fill]


def twr_returns(run: Run) -> pd.Series:
    """Each day's return with the day's deposit taken out: (V_d - F_d) / V_(d-1) - 1, from the
    second day on (0 after a day worth nothing: nothing was invested to earn it)."""
    before = run.values.shift(1)
    r = ((run.values - run.deposits) / before - 1).iloc[1:]
    return r.where(before.iloc[1:] > 0, 0.0)


@dataclass(frozen=True)
class Snapshot:
    """The account after one step: what is held until the next."""

    day: date
    positions: Mapping[str, float]  # symbol -> shares
    cash: float
    deposit: float


@dataclass(frozen=True)
class Costs:
    """What a fill costs: the price moved against the trader by `slippage`, and a fee of
    |value| x rate + fixed (fixed already in the base)."""

    rate: float
    fixed: float
    slippage: float

    @classmethod
    def of(cls, ledger: Ledger, rates: Mapping[str, float]) -> Costs:
        fixed = to_base(float(ledger.fee_fixed), ledger.fee_currency, ledger.base, rates)
        return cls(float(ledger.fee_rate), fixed, float(ledger.slippage))

    def buy_price(self, close: float) -> float:
        return close * (1 + self.slippage)

    def sell_price(self, close: float) -> float:
        return close * (1 - self.slippage)

    def fee(self, value: float) -> float:
        return abs(value) * self.rate + self.fixed

    def affordable(self, cash: float, close: float) -> int:
        """The most whole shares `cash` buys with the fee paid (never a cent more)."""
        price = self.buy_price(close)
        if cash <= self.fixed or price <= 0:
            return 0
        n = math.floor((cash - self.fixed) / (price * (1 + self.rate)))
        while n > 0 and n * price + self.fee(n * price) > cash:  # float rounding at the edge
            n -= 1
        return max(n, 0)


def to_base(amount: float, currency: str, base: str, rates: Mapping[str, float]) -> float:
    """`amount` of `currency` in the base; a currency that is neither the base nor in `rates`
    is an error (a guessed rate would be a wrong report)."""
    if currency == base:
        return amount
    if currency in rates:
        return amount * rates[currency]
    raise ValueError(f"no rate for {currency} in {base}")


def deposit_of(step: Step, base: str, rates: Mapping[str, float]) -> float:
    return sum(to_base(float(a), c, base, rates) for c, a in step.deposits.items())


def run_days(ledger: Ledger, prices: pd.DataFrame) -> pd.DatetimeIndex:
    """The price days from the first step day to the ledger's end (or the last price day, or
    the last step day if later), with every step day in."""
    if not ledger.steps:
        raise ValueError("the ledger has no steps")
    steps = pd.DatetimeIndex([pd.Timestamp(s.day) for s in ledger.steps])
    if not steps.is_monotonic_increasing or not steps.is_unique:
        raise ValueError("the ledger's step days are not strictly increasing")
    last = max(steps[-1], min(pd.Timestamp(ledger.end), prices.index.max()))
    inside = prices.index[(prices.index >= steps[0]) & (prices.index <= last)]
    return pd.DatetimeIndex(inside.union(steps))


def closes(ledger: Ledger, prices: pd.DataFrame, rates: Mapping[str, float]) -> pd.DataFrame:
    """The closes in the base on each run day (the latest on or before it; NaN before a
    listing). A security's currency is that of its trades in the ledger, else the base."""
    currency = {t.symbol: t.currency for s in ledger.steps for t in s.trades}
    factor = pd.Series({c: to_base(1.0, currency.get(c, ledger.base), ledger.base, rates) for c in prices.columns})
    days = run_days(ledger, prices)
    every = prices.reindex(prices.index.union(days)).sort_index().ffill()
    return every.loc[days] * factor


def daily(name: str, snapshots: Sequence[Snapshot], fills: list[Fill], close: pd.DataFrame) -> Run:
    """The run's value on every day of `close`: each snapshot's shares and cash held until the
    next one, shares valued at the day's close. A held share without a price is an error."""
    days = close.index
    at = pd.DatetimeIndex([pd.Timestamp(s.day) for s in snapshots])
    positions = pd.DataFrame([dict(s.positions) for s in snapshots], index=at, dtype=float).fillna(0.0)
    unpriced = sorted(set(positions.columns) - set(close.columns))
    if unpriced:
        raise ValueError(f"no prices for {', '.join(unpriced)}")
    held = positions.reindex(days, method="ffill").fillna(0.0)
    px = close[held.columns]
    missing = (held != 0) & px.isna()
    if missing.to_numpy().any():
        day, symbol = missing.stack().loc[lambda m: m].index[0]
        raise ValueError(f"{symbol} is held on {day.date()} without a price")
    cash = pd.Series([s.cash for s in snapshots], index=at).reindex(days, method="ffill").fillna(0.0)
    values = (held * px.fillna(0.0)).sum(axis=1) + cash
    deposits = pd.Series(0.0, index=days)
    deposits.loc[at] = [s.deposit for s in snapshots]
    return Run(name, values, deposits, (cash / values).where(values > 0), fills)


# -- the alternatives -----------------------------------------------------------------------


def spy(ledger: Ledger, prices: pd.DataFrame, rates: Mapping[str, float] | None = None) -> Run:
    """Every step's cash (the deposit and what was left before) buys as many whole SPY shares as
    it affords after the fee; the rest stays cash."""

    def buy_spy(step: Step, row: pd.Series, book: _Book, costs: Costs) -> list[Fill]:
        return book.buy(step.day, BENCHMARK, book.cash_buys(BENCHMARK, row, costs), row, costs)

    return _simulate("SPY", ledger, prices, rates or {}, buy_spy)


def equal_weight(ledger: Ledger, prices: pd.DataFrame, rates: Mapping[str, float] | None = None) -> Run:
    """At every step, the same weight in each stock that has a price that day (every column
    but SPY), in whole shares, fees paid."""

    def rebalance_equally(step: Step, row: pd.Series, book: _Book, costs: Costs) -> list[Fill]:
        listed = [s for s in row.index if s != BENCHMARK and row[s] > 0]
        return book.rebalance(step.day, {s: 1 / len(listed) for s in listed}, row, costs) if listed else []

    return _simulate("Equal weight", ledger, prices, rates or {}, rebalance_equally)


def targets_only(ledger: Ledger, prices: pd.DataFrame, rates: Mapping[str, float] | None = None) -> Run:
    """At every step, exactly the step's target weights (the optimiser's, without the rest of
    the system: no limits, no planner), whole shares, sells first. A step without targets
    keeps the holdings and adds the deposit to the cash."""

    def follow_targets(step: Step, row: pd.Series, book: _Book, costs: Costs) -> list[Fill]:
        return book.rebalance(step.day, step.targets, row, costs) if step.targets else []

    return _simulate("Targets only", ledger, prices, rates or {}, follow_targets)


class _Book:
    """A simulation's account while it runs (whole shares, cash never below zero)."""

    def __init__(self) -> None:
        self.cash = 0.0
        self.shares: dict[str, int] = {}

    def value(self, row: pd.Series) -> float:
        return self.cash + sum(q * _price(row, s) for s, q in self.shares.items())

    def cash_buys(self, symbol: str, row: pd.Series, costs: Costs) -> int:
        return costs.affordable(self.cash, _price(row, symbol))

    def buy(self, day: date, symbol: str, n: int, row: pd.Series, costs: Costs) -> list[Fill]:
        price = costs.buy_price(_price(row, symbol))
        if n <= 0 or price <= 0:
            return []
        fee = costs.fee(n * price)
        cost = n * price + fee
        if cost > self.cash:
            raise AssertionError(f"buying {n} {symbol} costs {cost} with {self.cash} cash")
        self.cash -= cost
        self.shares[symbol] = self.shares.get(symbol, 0) + n
        return [Fill(day, symbol, "buy", float(n), price, fee)]

    def sell(self, day: date, symbol: str, n: int, row: pd.Series, costs: Costs) -> list[Fill]:
        """Sells `n` shares unless the fee would eat the proceeds (then keeping them is cheaper)."""
        price = costs.sell_price(_price(row, symbol))
        fee = costs.fee(n * price)
        if n <= 0 or n * price <= fee:
            return []
        self.cash += n * price - fee
        self.shares[symbol] -= n
        if not self.shares[symbol]:
            del self.shares[symbol]
        return [Fill(day, symbol, "sell", float(n), price, fee)]

    def rebalance(self, day: date, weights: Mapping[str, float], row: pd.Series, costs: Costs) -> list[Fill]:
        """Whole shares nearest below each weight of the value (kept back: room for the fees
        and slippage), sells first, then buys with the cash, the largest shortfall first."""
        priced = {s: w for s, w in weights.items() if _price(row, s) > 0}
        budget = self.value(row) * (1 - costs.rate - costs.slippage) - costs.fixed * len(priced)
        want = {s: math.floor(max(budget, 0.0) * w / _price(row, s)) for s, w in priced.items()}
        fills: list[Fill] = []
        for s in sorted(self.shares):
            if _price(row, s) > 0 and self.shares[s] > want.get(s, 0):
                fills += self.sell(day, s, self.shares[s] - want.get(s, 0), row, costs)
        for s in sorted(want, key=lambda s: (self.shares.get(s, 0) - want[s]) * _price(row, s)):
            short = want[s] - self.shares.get(s, 0)
            if short > 0:
                fills += self.buy(day, s, min(short, self.cash_buys(s, row, costs)), row, costs)
        return fills


def _price(row: pd.Series, symbol: str) -> float:
    """The day's close (0 for no price: never bought or sold)."""
    p = row.get(symbol)
    return float(p) if p is not None and p == p else 0.0


def _simulate(
    name: str,
    ledger: Ledger,
    prices: pd.DataFrame,
    rates: Mapping[str, float],
    decide: Callable[[Step, pd.Series, _Book, Costs], list[Fill]],
) -> Run:
    """Each step day: the ledger's deposit into the cash, then `decide`'s trades at the close."""
    close = closes(ledger, prices, rates)
    costs = Costs.of(ledger, rates)
    book = _Book()
    fills: list[Fill] = []
    snapshots = []
    for step in ledger.steps:
        deposit = deposit_of(step, ledger.base, rates)
        book.cash += deposit
        fills += decide(step, close.loc[pd.Timestamp(step.day)], book, costs)
        snapshots.append(Snapshot(step.day, {s: float(q) for s, q in book.shares.items()}, book.cash, deposit))
    return daily(name, snapshots, fills, close)
