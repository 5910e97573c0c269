"""Which market days a replay steps on: the first trading day of each month (on or after
the deposit day), from the bundled prices' own calendar, so that a step is never a day
without prices."""

from __future__ import annotations

import bisect
from datetime import date

from nodes.universe import bundle


def trading_days(symbol: str = "SPY.US") -> list[date]:
    """The days the bundled data has a close for `symbol` (the market's calendar)."""
    return [d for d, _ in bundle.history(symbol)]


def month(text: str) -> date:
    """`2010-01` (or a full date) -> the first day of that month."""
    parts = text.split("-")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r}: write a month as YYYY-MM")
    return date(int(parts[0]), int(parts[1]), 1)


def steps(first: date, last: date, days: list[date], every: str = "month", deposit_day: int = 1) -> list[date]:
    """The step days between the months of `first` and `last`: per month its first trading
    day on or after `deposit_day` (`every="month"`), or every trading day (`"day"`)."""
    inside = [d for d in days if (first.year, first.month) <= (d.year, d.month) <= (last.year, last.month)]
    if every == "day":
        return inside
    if every != "month":
        raise ValueError(f"every={every!r}: month or day")
    out: list[date] = []
    for d in inside:
        if d.day >= deposit_day and (not out or (out[-1].year, out[-1].month) != (d.year, d.month)):
            out.append(d)
    return out


def last_day(days: list[date], last: date) -> date:
    """The last trading day in `last`'s month (or before): where a replay's values end."""
    end = date(last.year + (last.month == 12), last.month % 12 + 1, 1)
    i = bisect.bisect_left(days, end) - 1
    return days[max(i, 0)]
