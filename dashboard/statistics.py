"""The returns and risk statistics, computed in a short-lived worker process.

empyrical (with pandas and scipy) costs ~130 MB of RSS, more than the rest of the dashboard;
on a 2 GB board that would be kept for figures that change a few times a day. So each
computation runs in a fresh process that exits after it (`max_tasks_per_child=1`), and the
dashboard keeps only the result, per input, for every tab."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from .figures import Series, Statistics, statistics

KEPT = 8  # results kept (a few inputs: today's, yesterday's, while prices change)


class Statistician:
    def __init__(self) -> None:
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

    @staticmethod
    async def _compute(s: Series) -> Statistics:
        context = multiprocessing.get_context("spawn")  # a clean interpreter, not a copy of the web server
        with ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1) as pool:
            return await asyncio.get_running_loop().run_in_executor(pool, statistics, s)


STATISTICIAN = Statistician()
