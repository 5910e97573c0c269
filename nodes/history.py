"""Daily closes from the universe node as a pandas DataFrame, for the nodes that compute on
price history (scoring, optimization). It imports pandas: thin nodes must not import it.
Pure: the caller passes how one symbol's history is fetched (its node's `ctx.call`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from nodes.money.pairs import is_pair
from schemas.universe import History, Universe

FetchHistory = Callable[[str, date | None], Awaitable[History]]  # (symbol, from this day on or None: all)


@dataclass
class Cache:
    """Each symbol's closes fetched so far (the last `keep` of them), so that a run asks the
    universe only for the days after them: a replay's month asked 41 histories of up to
    1,261 closes each, most of its time, for about 21 new closes per symbol. A symbol whose
    stored prices changed (`prices_changed` of a sync names it) is fetched whole again; so
    is every symbol when the market's day goes back (a new replay)."""

    keep: int
    points: dict[str, list[tuple[date, float]]] = field(default_factory=dict)

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


async def closes(
    symbols: list[str], fetch: FetchHistory, cache: Cache | None = None, end: date | None = None
) -> pd.DataFrame:
    """One column per symbol (dates x symbols, NaN where a symbol has no close), fetched one
    symbol at a time so that no message carries the whole universe; with a `cache`, only
    the days after those it has (`end`: the last day this run may see)."""
    series = {}
    for symbol in symbols:
        have = cache.points.get(symbol, []) if cache else []
        if have and end is not None and have[-1][0] > end:  # the market's day went back: all again
            have = []
        start = have[-1][0] + timedelta(days=1) if have else None
        fresh = [] if start is not None and end is not None and start > end else (await fetch(symbol, start)).points
        points = have + [(p.day, float(p.close)) for p in fresh]
        if cache is not None:
            points = points[-cache.keep :]
            cache.points[symbol] = points
        series[symbol] = pd.Series(
            [c for _, c in points], index=pd.to_datetime([d for d, _ in points]), dtype="float64"
        )
    return pd.DataFrame(series).sort_index()
