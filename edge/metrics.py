"""A node's health figures for its heartbeat: memory, CPU, counts, handler latency."""

from __future__ import annotations

import os
import time
from collections import deque

import psutil


class Metrics:
    def __init__(self, window: int = 2048) -> None:
        self.started = time.monotonic()
        self.handled = 0
        self.errors = 0
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._proc = psutil.Process(os.getpid())
        self._proc.cpu_percent(None)  # first call primes the counter

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
        return round(self._proc.memory_info().rss / 2**20, 2)

    def cpu_percent(self) -> float:
        return self._proc.cpu_percent(None)
