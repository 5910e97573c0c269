"""Simple alternatives to the system, each given the ledger's own deposits on its own step days
and paying its fees and slippage at the same closes: SPY bought with every deposit, equal
weights over the stocks, and the optimiser's targets followed exactly. What they earn is the
bar the system's decisions have to clear.

Also the day-by-day account both the system and the alternatives are measured from (`Run`):
between two steps the earlier step's shares and cash are held. Pure: pandas and numpy, no MQTT.

Currencies: every figure is a float in the ledger's base currency, converted with that day's
rate (`Rates`: from the prices' currency-pair columns, e.g. `EURUSD_T0.ITS`, USD per EUR; a
currency without a rate is an error, never a guess). The closes are in their security's
currency: that of its trades in the ledger, else `PRICES_CURRENCY` (the bundled closes are
USD). A pair column is never a security: not held, not bought, not counted as a trade. The
alternatives keep their cash in the securities' currency: a deposit in another currency is
exchanged whole on its step day through the prices' pair, at the day's close moved against
the trader by the ledger's slippage and with the ledger's exchange fee (`Exchange`), as the
system's own exchanges are."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from nodes.money import pairs

from .ledger import Ledger, Step

BENCHMARK = "SPY.US"  # the only column of the bundled prices that is neither a stock nor a pair
PRICES_CURRENCY = "USD"  # the currency of a close whose security the ledger never traded


@dataclass(frozen=True)
class Fill:
    """One trade of a security in a run, in the base currency (at the day's rate)."""

    day: date
    symbol: str
    side: str  # buy | sell
    quantity: float
    price: float  # per share, slippage included
    fee: float

    @property
    def value(self) -> float:
        return self.quantity * self.price


@dataclass(frozen=True)
class Exchange:
    """One currency exchange of a run (an order on a pair such as EURUSD_T0.ITS), in the base
    currency at the day's rate. Its cost is its fee plus its spread: what the fill price gave
    away against the day's close of the pair."""

    day: date
    symbol: str  # the pair
    side: str  # sell: the pair's base currency into its quote (EUR -> USD for EURUSD)
    quantity: float  # units of the pair's base currency (EUR for EURUSD)
    value: float  # the quantity at the day's rate
    fee: float
    spread: float  # |fill price - the day's close| x quantity

    @property
    def cost(self) -> float:
        return self.fee + self.spread

    @classmethod
    def filled(
        cls, day: date, pair: pairs.Pair, side: str, quantity: float, price: float, fee: float, rates: Rates
    ) -> Exchange:
        """An order on `pair` filled at `price` with `fee` (both in the pair's quote currency),
        in the base at the day's rates, its spread measured against the day's close."""
        in_base = rates.on(pair.quote, day)
        spread = abs(price - rates.close(pair.symbol, day)) * quantity * in_base
        return cls(day, pair.symbol, side, quantity, quantity * rates.on(pair.base, day), fee * in_base, spread)


@dataclass(frozen=True, eq=False)
class Run:
    """One way of investing the deposits, day by day over the trading days from the first step
    day to the ledger's end: what the report measures and plots."""

    name: str
    values: pd.Series  # per day: holdings at the close plus cash, after the day's deposits and trades
    deposits: pd.Series  # per day: money put in (0 except on step days), already in that day's value
    cash_share: pd.Series  # per day: cash / value (NaN while the value is 0)
    trades: list[Fill]  # the securities' trades (never an exchange)
    exchanges: list[Exchange] = field(default_factory=list)


def twr_returns(run: Run) -> pd.Series:
    """Each day's return with the day's deposit taken out: (V_d - F_d) / V_(d-1) - 1, from the
    second day on (0 after a day worth nothing: nothing was invested to earn it)."""
    before = run.values.shift(1)
    r = ((run.values - run.deposits) / before - 1).iloc[1:]
    return r.where(before.iloc[1:] > 0, 0.0)


# -- rates -------------------------------------------------------------------------------------


class Rates:
    """Per day, the value of one unit of each currency in the base currency, from the prices'
    pair columns (the latest close on or before the day): a pair quoted in the base gives its
    base currency's rate (base USD: EUR = EURUSD), a pair of the base gives its quote's (base
    EUR: USD = 1 / EURUSD). The base is 1; any other currency is an error."""

    def __init__(self, base: str, prices: pd.DataFrame, days: pd.DatetimeIndex) -> None:
        self.base = base
        self.days = days
        symbols = [c for c in prices.columns if pairs.is_pair(c)]
        quoted = prices[symbols].where(prices[symbols] > 0)
        self.pairs = quoted.reindex(quoted.index.union(days)).sort_index().ffill().loc[days]
        per_unit: dict[str, pd.Series] = {}
        for symbol in symbols:
            pair = pairs.parse(symbol)
            assert pair is not None
            if (valued := pair.rates(base)) is not None:
                currency, inverted = valued
                per_unit[currency] = 1 / self.pairs[symbol] if inverted else self.pairs[symbol]
        self.per_unit = per_unit

    def series(self, currency: str) -> pd.Series:
        """The rate of `currency` on every day (NaN before its pair has a close)."""
        if currency == self.base:
            return pd.Series(1.0, index=self.days)
        if currency not in self.per_unit:
            raise ValueError(f"no rate for {currency} in {self.base}: the prices have no pair of the two")
        return self.per_unit[currency]

    def on(self, currency: str, day: date) -> float:
        """The rate of `currency` on `day` (one of the days)."""
        rate = float(self.series(currency).loc[pd.Timestamp(day)]) if currency != self.base else 1.0
        if not rate > 0:
            raise ValueError(f"no rate for {currency} in {self.base} on {day}")
        return rate

    def to_base(self, amount: float, currency: str, day: date) -> float:
        return amount if currency == self.base or not amount else amount * self.on(currency, day)

    def convert(self, amount: float, source: str, target: str, day: date) -> float:
        if source == target or not amount:
            return amount
        return amount * self.on(source, day) / self.on(target, day)

    def close(self, symbol: str, day: date) -> float:
        """A pair's close on `day` (the latest on or before it)."""
        if symbol not in self.pairs.columns:
            raise ValueError(f"no prices for the pair {symbol}")
        close = float(self.pairs.at[pd.Timestamp(day), symbol])
        if not close > 0:
            raise ValueError(f"{symbol} has no close on or before {day}")
        return close

    def value(self, amounts: pd.DataFrame) -> pd.Series:
        """Amounts per day (days x currencies) in the base, summed per day."""
        total = pd.Series(0.0, index=self.days)
        for currency in amounts.columns:
            held = amounts[currency]
            if not (held != 0).any():
                continue
            rate = self.series(currency)
            missing = (held != 0) & rate.isna()
            if missing.any():
                raise ValueError(f"no rate for {currency} in {self.base} on {missing.idxmax().date()}")
            total += held * rate.fillna(0.0)
        return total


def currencies(ledger: Ledger, symbols: Iterable[str]) -> dict[str, str]:
    """Each symbol's currency: that of its trades in the ledger, a pair's quote currency, else
    `PRICES_CURRENCY`."""
    traded = {t.symbol: t.currency for s in ledger.steps for t in s.trades}

    def of(symbol: str) -> str:
        pair = pairs.parse(symbol)
        return traded.get(symbol) or (pair.quote if pair else PRICES_CURRENCY)

    return {s: of(s) for s in symbols}


def deposit_of(step: Step, rates: Rates) -> float:
    """The step's deposits in the base, at the step day's rates."""
    return sum(rates.to_base(float(a), c, step.day) for c, a in step.deposits.items())


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


def rates_of(ledger: Ledger, prices: pd.DataFrame) -> Rates:
    """The daily rates of the ledger's run days."""
    return Rates(ledger.base, prices, run_days(ledger, prices))


def closes(ledger: Ledger, prices: pd.DataFrame, rates: Rates) -> pd.DataFrame:
    """The securities' closes (every column but the pairs) in the base on each run day: the
    latest close on or before it at the day's rate of its currency (NaN before a listing)."""
    days = rates.days
    symbols = pairs.investable(prices.columns)
    every = prices[symbols].reindex(prices.index.union(days)).sort_index().ffill().loc[days]
    currency = currencies(ledger, symbols)
    factor = pd.DataFrame({s: rates.series(currency[s]) for s in symbols}, index=days)
    return every * factor


@dataclass(frozen=True)
class Snapshot:
    """The account after one step: what is held until the next."""

    day: date
    positions: Mapping[str, float]  # symbol -> shares
    cash: Mapping[str, float]  # currency -> amount, valued at each day's rate
    deposit: float  # in the base, at the step day's rate


def daily(
    name: str,
    snapshots: Sequence[Snapshot],
    fills: list[Fill],
    close: pd.DataFrame,
    rates: Rates,
    exchanges: Sequence[Exchange] = (),
) -> Run:
    """The run's value on every day of `close`: each snapshot's shares and cash held until the
    next one, shares at the day's close and cash at the day's rate of its currency. A held
    share without a price or cash without a rate is an error."""
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
    amounts = pd.DataFrame([dict(s.cash) for s in snapshots], index=at, dtype=float).fillna(0.0)
    cash = rates.value(amounts.reindex(days, method="ffill").fillna(0.0))
    values = (held * px.fillna(0.0)).sum(axis=1) + cash
    deposits = pd.Series(0.0, index=days)
    deposits.loc[at] = [s.deposit for s in snapshots]
    return Run(name, values, deposits, (cash / values).where(values > 0), fills, list(exchanges))


# -- the alternatives -----------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """What a fill costs on one day, in the book's currency: the price moved against the trader
    by `slippage`, a fee of |value| x rate + fixed for a share, fx_rate and fx_fixed for an
    exchange (the fixed parts converted from the ledger's fee currency at the day's rate)."""

    rate: float
    fixed: float
    slippage: float
    fx_rate: float = 0.0
    fx_fixed: float = 0.0

    @classmethod
    def of(cls, ledger: Ledger, rates: Rates, day: date, currency: str) -> Costs:
        def fixed(amount: float) -> float:
            return rates.convert(amount, ledger.fee_currency, currency, day)

        return cls(
            float(ledger.fee_rate),
            fixed(float(ledger.fee_fixed)),
            float(ledger.slippage),
            float(ledger.fx_fee_rate),
            fixed(float(ledger.fx_fee_fixed)),
        )

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


def spy(ledger: Ledger, prices: pd.DataFrame) -> Run:
    """Every step's cash (the deposit and what was left before) buys as many whole SPY shares as
    it affords after the fee; the rest stays cash."""

    def buy_spy(step: Step, row: pd.Series, book: _Book, costs: Costs) -> list[Fill]:
        return book.buy(step.day, BENCHMARK, book.cash_buys(BENCHMARK, row, costs), row, costs)

    return _simulate("SPY", ledger, prices, buy_spy)


def equal_weight(ledger: Ledger, prices: pd.DataFrame) -> Run:
    """At every step, the same weight in each stock that has a price that day (every column
    but SPY and the currency pairs), in whole shares, fees paid."""

    def rebalance_equally(step: Step, row: pd.Series, book: _Book, costs: Costs) -> list[Fill]:
        listed = [s for s in row.index if s != BENCHMARK and not pairs.is_pair(s) and row[s] > 0]
        return book.rebalance(step.day, {s: 1 / len(listed) for s in listed}, row, costs) if listed else []

    return _simulate("Equal weight", ledger, prices, rebalance_equally)


def targets_only(ledger: Ledger, prices: pd.DataFrame) -> Run:
    """At every step, exactly the step's target weights (the optimiser's, without the rest of
    the system: no limits, no planner), whole shares, sells first. A step without targets
    keeps the holdings and adds the deposit to the cash."""

    def follow_targets(step: Step, row: pd.Series, book: _Book, costs: Costs) -> list[Fill]:
        weights = {s: w for s, w in step.targets.items() if not pairs.is_pair(s)}
        return book.rebalance(step.day, weights, row, costs) if weights else []

    return _simulate("Targets only", ledger, prices, follow_targets)


class _Book:
    """A simulation's account while it runs (whole shares, cash in one currency never below
    zero); prices and amounts in that currency."""

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


def book_currency(ledger: Ledger, prices: pd.DataFrame) -> str:
    """The currency an alternative keeps its cash in: its securities' (the bundled prices' USD)
    when they all have one, else the base (securities of several currencies are then bought
    at the day's cross rate without an exchange: a simplification the bundle never needs)."""
    found = set(currencies(ledger, pairs.investable(prices.columns)).values())
    return found.pop() if len(found) == 1 else ledger.base


def exchange_into(
    amount: float, currency: str, into: str, day: date, symbols: Iterable[str], rates: Rates, costs: Costs
) -> tuple[float, Exchange]:
    """`amount` of `currency` exchanged whole into `into` through the pair among `symbols` that
    trades the two, at the day's close moved against the trader by the slippage, the exchange
    fee paid in the pair's quote currency (as the paper broker fills a pair): what arrives,
    and the exchange in the base."""
    pair = pairs.between(currency, into, symbols)
    if pair is None:
        raise ValueError(f"no pair in the prices exchanges {currency} into {into}")
    close = rates.close(pair.symbol, day)
    side = pair.side(currency, into)
    if side == "sell":  # base -> quote: `amount` is the quantity
        price = costs.sell_price(close)
        quantity = amount
        fee = min(quantity * price * costs.fx_rate + costs.fx_fixed, quantity * price)
        received = quantity * price - fee
    else:  # quote -> base: `amount` pays the quantity, its fee included
        price = costs.buy_price(close)
        quantity = max(amount - costs.fx_fixed, 0.0) / (price * (1 + costs.fx_rate))
        fee = amount - quantity * price
        received = quantity
    return received, Exchange.filled(day, pair, side, quantity, price, fee, rates)


def _simulate(
    name: str,
    ledger: Ledger,
    prices: pd.DataFrame,
    decide: Callable[[Step, pd.Series, _Book, Costs], list[Fill]],
) -> Run:
    """Each step day: the ledger's deposits into the cash (exchanged into the book's currency),
    then `decide`'s trades at the close; the fills in the base at the day's rate."""
    rates = rates_of(ledger, prices)
    close = closes(ledger, prices, rates)
    currency = book_currency(ledger, prices)
    book = _Book()
    fills: list[Fill] = []
    exchanges: list[Exchange] = []
    snapshots = []
    for step in ledger.steps:
        costs = Costs.of(ledger, rates, step.day, currency)
        for c, a in step.deposits.items():
            if c == currency or not a:
                book.cash += float(a)
                continue
            received, exchange = exchange_into(float(a), c, currency, step.day, prices.columns, rates, costs)
            book.cash += received
            exchanges.append(exchange)
        rate = rates.on(currency, step.day)
        row = close.loc[pd.Timestamp(step.day)] / rate
        made = decide(step, row, book, costs)
        fills += [Fill(f.day, f.symbol, f.side, f.quantity, f.price * rate, f.fee * rate) for f in made]
        shares = {s: float(q) for s, q in book.shares.items()}
        snapshots.append(Snapshot(step.day, shares, {currency: book.cash}, deposit_of(step, rates)))
    return daily(name, snapshots, fills, close, rates, exchanges)
