"""Daily closes from the universe node, for the nodes that compute on price history
(scoring, optimization). The node fetches and keeps them as plain arrays (`fetched`: two
arrays per symbol, days and closes, which cross to its child process in a few kilobytes);
its child makes them a pandas DataFrame (`frame`). Only `frame` imports pandas: the nodes
themselves never load it. Pure: the caller passes how one symbol's history is fetched
(its node's `ctx.call`)."""

from __future__ import annotations

from array import array
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from nodes.money.pairs import is_pair
from schemas.universe import History, Universe

if TYPE_CHECKING:
    import pandas as pd

FetchHistory = Callable[[str, date | None], Awaitable[History]]  # (symbol, from this day on or None: all)


@dataclass
class Points:
    """One symbol's closes, oldest first: each day as its ordinal (`date.toordinal`) and its close."""

    days: array[int] = field(default_factory=lambda: array("i"))
    closes: array[float] = field(default_factory=lambda: array("d"))

    @property
    def last(self) -> date | None:
        return date.fromordinal(self.days[-1]) if self.days else None

    def then(self, history: History, keep: int | None = None) -> Points:
        """These closes and the history's after them, the last `keep` of them."""
        days = self.days + array("i", (p.day.toordinal() for p in history.points))
        closes = self.closes + array("d", (float(p.close) for p in history.points))
        return Points(days[-keep:], closes[-keep:]) if keep is not None else Points(days, closes)


Closes = dict[str, Points]  # by symbol


@dataclass
class Cache:
    """Each symbol's closes fetched so far (the last `keep` of them), so that a run asks the
    universe only for the days after them: a replay's month asked 41 histories of up to
    1,261 closes each, most of its time, for about 21 new closes per symbol. A symbol whose
    stored prices changed (`prices_changed` of a sync names it) is fetched whole again; so
    is every symbol when the market's day goes back (a new replay)."""

    keep: int
    points: Closes = field(default_factory=dict)

    def forget(self, symbols: Iterable[str]) -> None:
        for symbol in symbols:
            self.points.pop(symbol, None)


class NotInUniverse(ValueError):
    """Symbols were asked for that the universe does not have (the caller refuses the request)."""


def chosen(universe: Universe | None, requested: list[str]) -> list[str]:
    """The requested symbols, each of which must be a security of the universe, or every
    active one; a currency pair (`nodes/money/pairs.py`) is a rate, never scored or optimised."""
    known = {s.symbol: s for s in universe.securities} if universe else {}
    unknown = [s for s in requested if s not in known]
    if unknown:
        raise NotInUniverse(f"not in the universe: {', '.join(unknown)}")
    rates = [s for s in requested if is_pair(s)]
    if rates:
        raise NotInUniverse(f"currency pairs are rates, not securities to score or optimise: {', '.join(rates)}")
    return sorted(set(requested)) or sorted(s for s, sec in known.items() if sec.active and not is_pair(s))


async def fetched(
    symbols: list[str], fetch: FetchHistory, cache: Cache | None = None, end: date | None = None
) -> Closes:
    """Each symbol's closes, fetched one symbol at a time so that no message carries the
    whole universe; with a `cache`, only the days after those it has (`end`: the last day
    this run may see)."""
    out: Closes = {}
    for symbol in symbols:
        have = cache.points.get(symbol, Points()) if cache else Points()
        if have.last is not None and end is not None and have.last > end:  # the market's day went back: all again
            have = Points()
        start = have.last + timedelta(days=1) if have.last is not None else None
        if start is not None and end is not None and start > end:
            points = have
        else:
            points = have.then(await fetch(symbol, start), cache.keep if cache is not None else None)
        if cache is not None:
            cache.points[symbol] = points
        out[symbol] = points
    return out


def frame(closes: Closes) -> pd.DataFrame:
    """One column per symbol (dates x symbols, NaN where a symbol has no close). Run where
    pandas may be loaded: in a node's child process, a test, a benchmark."""
    import pandas as pd

    series = {
        symbol: pd.Series(list(p.closes), index=pd.to_datetime([date.fromordinal(d) for d in p.days]), dtype="float64")
        for symbol, p in closes.items()
    }
    return pd.DataFrame(series).sort_index()


async def closes(
    symbols: list[str], fetch: FetchHistory, cache: Cache | None = None, end: date | None = None
) -> pd.DataFrame:
    """`fetched` as a DataFrame (`frame`), in one process."""
    return frame(await fetched(symbols, fetch, cache, end))
