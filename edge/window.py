"""The in-flight window: how many QoS>0 publishes may wait for their acknowledgement.

paho ignores the broker's Receive Maximum (Mosquitto's `max_inflight_messages`, 20 by
default); exceeding it makes the broker drop the connection. The window starts at our
own cap and is lowered to the CONNACK's value; a slot is taken before a publish and
given back when its acknowledgement arrives (never earlier).
"""

from __future__ import annotations

import asyncio
import collections


class InflightWindow:
    def __init__(self, limit: int) -> None:
        self.cap = limit
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def lower_to(self, receive_maximum: int) -> None:
        self.limit = min(self.cap, receive_maximum)

    async def take(self) -> None:
        while self.used >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._took()

    def try_take(self) -> bool:
        """A slot now, or False (also when others are queued for one: they come first)."""
        if self.used >= self.limit or self._waiters:
            return False
        self._took()
        return True

    def give(self) -> None:
        self.used -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def _took(self) -> None:
        self.used += 1
        self.peak = max(self.peak, self.used)

    @property
    def waiting(self) -> int:
        return len(self._waiters)
