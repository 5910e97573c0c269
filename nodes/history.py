"""Daily closes from the universe node as a pandas DataFrame, for the nodes that compute on
price history (scoring, optimization). It imports pandas: thin nodes must not import it.
Pure: the caller passes how one symbol's history is fetched (its node's `ctx.call`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pandas as pd

from schemas.universe import History, Universe

FetchHistory = Callable[[str], Awaitable[History]]


class NotInUniverse(ValueError):
    """Symbols were asked for that the universe does not have (the caller refuses the request)."""


def chosen(universe: Universe | None, requested: list[str]) -> list[str]:
    """The requested symbols, each of which must be in the universe, or every active one."""
    known = {s.symbol: s for s in universe.securities} if universe else {}
    unknown = [s for s in requested if s not in known]
    if unknown:
        raise NotInUniverse(f"not in the universe: {', '.join(unknown)}")
    return sorted(set(requested)) or sorted(s for s, sec in known.items() if sec.active)


async def closes(symbols: list[str], fetch: FetchHistory) -> pd.DataFrame:
    """One column per symbol (dates x symbols, NaN where a symbol has no close), fetched one
    symbol at a time so that no message carries the whole universe."""
    series = {}
    for symbol in symbols:
        h = await fetch(symbol)
        series[symbol] = pd.Series(
            [float(p.close) for p in h.points], index=pd.to_datetime([p.day for p in h.points]), dtype="float64"
        )
    return pd.DataFrame(series).sort_index()
