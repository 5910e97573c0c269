"""The closes a computing node keeps between runs (`nodes/history.py`): only the days after
them are asked for, a symbol whose stored prices changed is asked whole again, and so is
every symbol when the market's day goes back."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from nodes import history
from schemas.universe import History, PricePoint

DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(30)]


class Universe:
    """Serves closes up to `end` (the clock), the last `last` of them, and counts what it sent."""

    def __init__(self) -> None:
        self.end = DAYS[9]
        self.close = {d: Decimal(100 + i) for i, d in enumerate(DAYS)}
        self.sent: list[tuple[str, date | None, int]] = []

    async def fetch(self, symbol: str, start: date | None) -> History:
        days = [d for d in DAYS if (start is None or d >= start) and d <= self.end][-5:]
        self.sent.append((symbol, start, len(days)))
        return History(symbol=symbol, currency="USD", points=[PricePoint(day=d, close=self.close[d]) for d in days])


async def test_only_the_new_days_are_fetched_and_a_change_or_a_step_back_fetches_all():
    u, cache = Universe(), history.Cache(keep=5)
    first = await history.closes(["A.US"], u.fetch, cache, u.end)
    assert list(first["A.US"]) == [105.0, 106.0, 107.0, 108.0, 109.0] and u.sent == [("A.US", None, 5)]
    u.end = DAYS[11]
    second = await history.closes(["A.US"], u.fetch, cache, u.end)
    assert list(second["A.US"]) == [107.0, 108.0, 109.0, 110.0, 111.0]  # the last 5, as a whole fetch gives
    assert u.sent[-1] == ("A.US", DAYS[10], 2)
    again = await history.closes(["A.US"], u.fetch, cache, u.end)  # nothing new up to the clock: no request
    assert again.equals(second) and len(u.sent) == 2
    u.close[DAYS[8]] = Decimal(999)  # a sync corrected a past close: prices_changed names A.US
    cache.forget(["A.US"])
    third = await history.closes(["A.US"], u.fetch, cache, u.end)
    assert 999.0 in list(third["A.US"]) and u.sent[-1] == ("A.US", None, 5)
    u.end = DAYS[4]  # a new replay: the clock went back
    back = await history.closes(["A.US"], u.fetch, cache, u.end)
    assert back.index.max().date() == DAYS[4] and u.sent[-1] == ("A.US", None, 5)
