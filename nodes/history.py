"""Daily closes from the universe node as a pandas DataFrame, for the nodes that compute on
price history (scoring, optimization). It imports pandas: thin nodes must not import it."""

from __future__ import annotations

import pandas as pd

from edge import Context, Rejected
from schemas import catalog as t
from schemas.universe import GetHistory, Universe


def chosen(universe: Universe | None, requested: list[str]) -> list[str]:
    """The requested symbols, each of which must be in the universe, or every active one."""
    known = {s.symbol: s for s in universe.securities} if universe else {}
    unknown = [s for s in requested if s not in known]
    if unknown:
        raise Rejected(f"not in the universe: {', '.join(unknown)}")
    return sorted(set(requested)) or sorted(s for s, sec in known.items() if sec.active)


async def closes(symbols: list[str], ctx: Context) -> pd.DataFrame:
    """One column per symbol (dates x symbols, NaN where a symbol has no close), asked of
    the universe one symbol at a time so that no message carries the whole universe."""
    series = {}
    for symbol in symbols:
        h = await ctx.call(t.UNIVERSE_HISTORY, GetHistory(symbol=symbol), timeout=60)
        series[symbol] = pd.Series([float(p.close) for p in h.points],
                                   index=pd.to_datetime([p.day for p in h.points]), dtype="float64")
    return pd.DataFrame(series).sort_index()
