"""The numbers the Overview and Portfolio pages show, computed from the messages alone:
returns with the deposits taken out (time-weighted) and with them in (money-weighted,
XIRR), a benchmark bought with the same deposits, each position's gain and its weight
against the target, and money, percentages and days written for a person.

Pure: no MQTT, no web, no clock. Money arrives as Decimal; the statistics are floats
(display only, never booked). Days are UTC days, one valuation per day; a return that
spans a gap in the valuations (the system was off) is put on the day after the gap, and
the days in between count as unchanged, so that the annual figures see calendar days.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from schemas.optimization import Targets
from schemas.portfolio import Summary

from .formats import day as day
from .formats import money as money
from .formats import percent as percent
from .formats import quantity as quantity

if TYPE_CHECKING:
    import numpy as np

DAYS_PER_YEAR = 365  # calendar days: XIRR's convention, and the valuations are one per calendar day
PERIODS = (("1 month", 30), ("3 months", 91), ("1 year", 365), ("All time", None))
EXP_LIMIT = 500.0  # exp(700) overflows a float; 500 leaves room for the amounts


@dataclass(frozen=True)
class Flow:
    """Money put into the account (+) or taken out (-) on a day, in the base currency."""

    day: date
    amount: float


@dataclass(frozen=True)
class Series:
    """The account's value per valuation day and the money moved in or out on that day
    (already in that day's value: a deposit is counted at the day's close)."""

    days: list[date]
    values: list[float]
    flows: list[float]

    def __len__(self) -> int:
        return len(self.days)


def deposit_flows(sightings: Mapping[date, float], first_day: date | None) -> list[Flow]:
    """Dated deposits from running totals of the net deposits (day: the total last seen that
    day). The total first seen holds everything deposited before anyone watched: it goes on
    `first_day` (the first valuation) when that is earlier; each later change goes on the
    day it was seen."""
    days = sorted(sightings)
    flows: list[Flow] = []
    before = 0.0
    for i, seen_on in enumerate(days):
        change = sightings[seen_on] - before
        before = sightings[seen_on]
        on = first_day if i == 0 and first_day is not None and first_day < seen_on else seen_on
        if change:
            flows.append(Flow(on, change))
    return flows


def series(points: Sequence[tuple[date, float]], flows: Sequence[Flow]) -> Series:
    """Values by day, with each flow on the first valuation day on or after it (a flow
    before the first valuation is in the first value; one after the last is dropped: no
    value shows it yet)."""
    ordered = sorted(points)
    days = [d for d, _ in ordered]
    moved = [0.0] * len(days)
    for f in flows:
        i = bisect.bisect_left(days, f.day)
        if i < len(days):
            moved[i] += f.amount
    return Series(days, [v for _, v in ordered], moved)


def deposited(s: Series) -> list[float]:
    """The net money put in so far, on each valuation day."""
    return [float(x) for x in itertools.accumulate(s.flows)]


def daily_returns(s: Series) -> list[tuple[date, float]]:
    """Each day's return with its flow taken out: (value - flow) / previous value - 1. A day
    after a zero value has none (nothing was invested to earn it)."""
    out = []
    for i in range(1, len(s)):
        if s.values[i - 1] > 0:
            out.append((s.days[i], (s.values[i] - s.flows[i]) / s.values[i - 1] - 1))
    return out


def calendar_returns(s: Series, start: int = 0) -> np.ndarray:
    """The returns after valuation `start`, one per calendar day (a gap's days are 0)."""
    import numpy as np  # the statistics worker's (`statistics.py`): the web server never loads numpy

    if len(s) - start < 2:
        return np.zeros(0)
    first = s.days[start]
    out = np.zeros((s.days[-1] - first).days)
    for on, r in daily_returns(s):
        if on > first:
            out[(on - first).days - 1] = r
    return out


def window_start(s: Series, days: int | None) -> int | None:
    """The valuation a period of `days` before the last one starts from: the last one on or
    before that day; None when the history is shorter (or there is none)."""
    if len(s) < 2:
        return None
    if days is None:
        return 0
    since = s.days[-1] - timedelta(days=days)
    i = bisect.bisect_right(s.days, since) - 1
    return i if i >= 0 else None


def time_weighted(s: Series, start: int | None) -> float | None:
    """The return from valuation `start` to the last, deposits taken out: what one unit
    invested at the start became (empyrical's cumulative return of the daily returns)."""
    if start is None or start >= len(s) - 1:
        return None
    import empyrical  # heavy (pandas, scipy): loaded by the statistics worker only (`statistics.py`)

    return float(empyrical.cum_returns_final(calendar_returns(s, start)))


def _annual_log_rate(flows: Sequence[tuple[date, float]]) -> float | None:
    """x with sum(amount * exp(-x * years since the first flow)) = 0: XIRR's rate as a
    continuous annual rate (so that a short window's huge annual rate stays finite)."""
    if not flows:
        return None
    import numpy as np  # the statistics worker's, as above

    first = min(d for d, _ in flows)
    years = np.array([(d - first).days / DAYS_PER_YEAR for d, _ in flows])
    amounts = np.array([a for _, a in flows])
    if years.max() <= 0 or not (amounts > 0).any() or not (amounts < 0).any():
        return None
    limit = EXP_LIMIT / years.max()

    def npv(x: float) -> float:
        return float(np.dot(amounts, np.exp(-x * years)))

    lo, hi = -limit, limit
    if npv(lo) * npv(hi) > 0:
        return None
    from scipy.optimize import brentq  # heavy: loaded by the statistics worker only

    return float(brentq(npv, lo, hi, xtol=1e-12, rtol=1e-12, maxiter=500))


def xirr(flows: Sequence[tuple[date, float]]) -> float | None:
    """The annual rate that makes these cash flows (an investor's view: money in negative,
    money out and the final value positive) worth nothing today; None without a sign change."""
    x = _annual_log_rate(flows)
    if x is None:
        return None
    return math.expm1(x) if x < EXP_LIMIT else math.inf


def investor_flows(s: Series, start: int = 0) -> list[tuple[date, float]]:
    """The account from valuation `start` on as an investor's cash flows: the start value
    and every later deposit paid in (negative), withdrawals and the last value out (positive)."""
    flows = [(s.days[start], -s.values[start])]
    flows += [(s.days[i], -s.flows[i]) for i in range(start + 1, len(s)) if s.flows[i]]
    flows.append((s.days[-1], s.values[-1]))
    return flows


def money_weighted(s: Series, start: int | None) -> float | None:
    """The return from valuation `start` to the last with the deposits' timing in: XIRR of
    the start value, every flow after it and the last value, as a return over the window."""
    if start is None or start >= len(s) - 1:
        return None
    x = _annual_log_rate(investor_flows(s, start))
    if x is None:
        return None
    return math.expm1(x * (s.days[-1] - s.days[start]).days / DAYS_PER_YEAR)


@dataclass(frozen=True)
class PeriodReturn:
    label: str
    since: date | None
    time_weighted: float | None
    money_weighted: float | None


def period_returns(s: Series) -> list[PeriodReturn]:
    """1 month, 3 months, 1 year and all time, each both ways (None: the history is shorter)."""
    out = []
    for label, days in PERIODS:
        start = window_start(s, days)
        since = s.days[start] if start is not None else None
        out.append(PeriodReturn(label, since, time_weighted(s, start), money_weighted(s, start)))
    return out


@dataclass(frozen=True)
class Risk:
    """All-time statistics of the daily time-weighted returns (empyrical), annual ones only
    over a year of history or more (an annualised week says nothing)."""

    days: int
    annual_return: float | None
    xirr: float | None
    volatility: float | None
    sharpe: float | None
    max_drawdown: float | None


def risk(s: Series) -> Risk:
    r = calendar_returns(s)
    days = len(r)
    if days < 2:
        return Risk(days, None, None, None, None, None)
    import empyrical

    a_year = days >= DAYS_PER_YEAR
    vol = float(empyrical.annual_volatility(r, annualization=DAYS_PER_YEAR))
    sharpe = float(empyrical.sharpe_ratio(r, annualization=DAYS_PER_YEAR)) if vol > 0 else None
    return Risk(
        days,
        float(empyrical.annual_return(r, annualization=DAYS_PER_YEAR)) if a_year else None,
        xirr(investor_flows(s)) if a_year else None,
        vol,
        sharpe,
        float(empyrical.max_drawdown(r)),
    )


def day_change(s: Series) -> tuple[float, float | None] | None:
    """The last value's change since the previous valuation, deposits taken out: (money,
    share of the previous value)."""
    if len(s) < 2:
        return None
    change = s.values[-1] - s.flows[-1] - s.values[-2]
    return change, (change / s.values[-2] if s.values[-2] > 0 else None)


def benchmark(s: Series, prices: Sequence[tuple[date, float]]) -> list[float | None]:
    """The value on each valuation day of a benchmark bought with the same deposits: each
    flow buys (or sells) units at that day's price, the latest close on or before it. A day
    before the benchmark's first price has no value; its flows buy at the first price."""
    ordered = sorted(prices)
    price_days = [d for d, _ in ordered]
    units = pending = 0.0
    out: list[float | None] = []
    for on, flow in zip(s.days, s.flows, strict=True):
        i = bisect.bisect_right(price_days, on) - 1
        pending += flow
        if i < 0:
            out.append(None)
            continue
        price = ordered[i][1]
        units += pending / price
        pending = 0.0
        out.append(units * price)
    return out


# -- the Portfolio page ------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionRow:
    symbol: str
    currency: str
    quantity: Decimal
    average_price: Decimal
    price: Decimal | None
    value: Decimal | None
    value_base: Decimal | None
    gain: Decimal | None  # in `currency`: value - average price x quantity
    gain_base: Decimal | None
    gain_share: float | None  # of the cost
    weight: float  # of the total value (0: unpriced)
    target: float | None  # None: no targets published yet


def positions(summary: Summary, targets: Targets | None) -> list[PositionRow]:
    """Every holding with its gain against its average price and its weight against the
    target, largest value first."""
    wanted = {t.symbol: float(t.weight) for t in targets.targets} if targets else None
    rows = []
    for h in summary.positions:
        cost = h.average_price * h.quantity
        gain = h.value - cost if h.value is not None else None
        rate = summary.fx.get(h.currency)
        rows.append(
            PositionRow(
                symbol=h.symbol,
                currency=h.currency,
                quantity=h.quantity,
                average_price=h.average_price,
                price=h.price,
                value=h.value,
                value_base=h.value_base,
                gain=gain,
                gain_base=gain * rate if gain is not None and rate is not None else None,
                gain_share=float(gain / cost) if gain is not None and cost > 0 else None,
                weight=float(h.weight or 0),
                target=wanted.get(h.symbol, 0.0) if wanted is not None else None,
            )
        )
    return sorted(rows, key=lambda r: -(r.value_base or 0))


def weights_against_targets(summary: Summary, targets: Targets | None) -> list[tuple[str, float, float]]:
    """(symbol, weight, target) of every security held or targeted, by target then weight;
    cash last, its target being what the targets leave over (none: they add up to 1)."""
    held = {h.symbol: float(h.weight or 0) for h in summary.positions}
    wanted = {t.symbol: float(t.weight) for t in targets.targets} if targets else {}
    symbols = sorted(
        set(held) | {s for s, w in wanted.items() if w > 0}, key=lambda s: (-wanted.get(s, 0), -held.get(s, 0), s)
    )
    rows = [(s, held.get(s, 0.0), wanted.get(s, 0.0)) for s in symbols]
    total = float(summary.total_base)
    cash = float(summary.cash_base) / total if total > 0 else 0.0
    return [*rows, ("Cash", cash, max(0.0, 1 - sum(wanted.values())))]


# -- for a person ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    """Everything the returns card shows, computed in one go (in the statistics worker)."""

    periods: list[PeriodReturn]
    risk: Risk


def statistics(s: Series) -> Statistics:
    return Statistics(period_returns(s), risk(s))
