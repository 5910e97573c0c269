"""The returns and risk statistics, computed in a child process (`nodes/child.py`).

empyrical (with pandas and scipy) costs ~130 MB of RSS, more than the rest of the dashboard;
on a 2 GB board that would be kept for figures that change a few times a day. So they are
computed in a child process, kept while computations come (each new valuation brings one)
and gone `IDLE_S` after the last, and the dashboard keeps only the result, per input, for
every tab."""

from __future__ import annotations

import asyncio

from nodes.child import Child

from .figures import Series, Statistics

IDLE_S = 60.0  # seconds the child waits for the next computation
KEPT = 8  # results kept (a few inputs: today's, yesterday's, while prices change)


class Statistician:
    def __init__(self) -> None:
        self._child = Child("statistics", IDLE_S)
        self._done: dict[tuple[object, ...], Statistics] = {}
        self._running: dict[tuple[object, ...], asyncio.Future[Statistics]] = {}

    async def of(self, s: Series) -> Statistics:
        key = (tuple(s.days), tuple(s.values), tuple(s.flows))
        if key in self._done:
            return self._done[key]
        if key not in self._running:
            self._running[key] = asyncio.ensure_future(self._compute(s))
        try:
            result = await asyncio.shield(self._running[key])
        finally:
            self._running.pop(key, None)
        self._done[key] = result
        while len(self._done) > KEPT:
            self._done.pop(next(iter(self._done)))
        return result

    async def _compute(self, s: Series) -> Statistics:
        result: Statistics = await self._child.run("dashboard.figures:statistics", s)
        return result


STATISTICIAN = Statistician()
