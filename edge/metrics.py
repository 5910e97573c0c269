"""A node's health figures for its heartbeat: memory, CPU, counts, handler latency.

Memory and CPU come from `/proc/self/statm` and `os.times()` rather than psutil: every
node imports this module, and psutil costs about half a megabyte of RSS at rest.
"""

from __future__ import annotations

import os
import time
from collections import deque

_PAGE = os.sysconf("SC_PAGE_SIZE")


class Metrics:
    def __init__(self, window: int = 2048) -> None:
        self.started = time.monotonic()
        self.handled = 0
        self.errors = 0
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._cpu_at = (time.monotonic(), _cpu_seconds())

    def record(self, seconds: float) -> None:
        self.handled += 1
        self._latency_ms.append(seconds * 1000.0)

    def percentile(self, q: float) -> float | None:
        if not self._latency_ms:
            return None
        data = sorted(self._latency_ms)
        return round(data[min(len(data) - 1, int(q * len(data)))], 3)

    def uptime(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def rss_mb(self) -> float:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return round(resident_pages * _PAGE / 2**20, 2)

    def cpu_percent(self) -> float:
        """CPU used since the previous call, in percent of one core (as psutil counts)."""
        wall, cpu = time.monotonic(), _cpu_seconds()
        then_wall, then_cpu = self._cpu_at
        self._cpu_at = (wall, cpu)
        return round(100.0 * (cpu - then_cpu) / (wall - then_wall), 1) if wall > then_wall else 0.0


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
