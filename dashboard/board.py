"""What the dashboard knows: the latest message of every topic it follows, the recent
errors and order events, each with a version so that a page redraws only what changed.
Pure and thread-safe: the node's handlers write it, the pages read it. No MQTT, no web.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from schemas.runtime import ErrorReport, Heartbeat, NodeStatus
from schemas.trading import Order

ERRORS_KEPT = 300
ORDER_EVENTS_KEPT = 200


@dataclass
class Board:
    latest: dict[str, Any] = field(default_factory=dict)  # catalog path: the latest model
    versions: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, NodeStatus] = field(default_factory=dict)  # node ident: its birth or death
    beats: dict[str, tuple[Heartbeat, float]] = field(default_factory=dict)  # ident: (beat, monotonic arrival)
    rates: dict[str, tuple[float, float]] = field(default_factory=dict)  # ident: messages in, out per second
    errors: deque[ErrorReport] = field(default_factory=lambda: deque(maxlen=ERRORS_KEPT))
    orders: deque[Order] = field(default_factory=lambda: deque(maxlen=ORDER_EVENTS_KEPT))
    version: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _bump(self, key: str) -> None:
        self.version += 1
        self.versions[key] = self.version

    def put(self, path: str, model: Any) -> None:
        with self.lock:
            self.latest[path] = model
            self._bump(path)

    def get(self, path: str) -> Any:
        with self.lock:
            return self.latest.get(path)

    def seen(self, *keys: str) -> int:
        """The newest version among `keys`: a page redraws when it grows."""
        with self.lock:
            return max((self.versions.get(k, 0) for k in keys), default=0)

    def node_status(self, status: NodeStatus) -> None:
        with self.lock:
            known = self.statuses.get(status.node)
            if known is not None and status.incarnation < known.incarnation:
                return  # a late will of an older incarnation
            self.statuses[status.node] = status
            self._bump("nodes")

    def heartbeat(self, beat: Heartbeat) -> None:
        """Keep the beat, and the node's messages per second since its previous beat (of the
        same incarnation: a restart starts its counters at 0)."""
        with self.lock:
            now = time.monotonic()
            before = self.beats.get(beat.node)
            if before is not None and before[0].incarnation == beat.incarnation and now > before[1]:
                seconds = now - before[1]
                self.rates[beat.node] = (
                    max(0, beat.msgs_in - before[0].msgs_in) / seconds,
                    max(0, beat.msgs_out - before[0].msgs_out) / seconds,
                )
            self.beats[beat.node] = (beat, now)
            self._bump("nodes")

    def rate(self, ident: str) -> tuple[float, float] | None:
        with self.lock:
            return self.rates.get(ident)

    def error(self, report: ErrorReport) -> None:
        with self.lock:
            self.errors.appendleft(report)
            self._bump("errors")

    def order(self, order: Order) -> None:
        with self.lock:
            self.orders.appendleft(order)
            self._bump("orders")

    def recent_errors(self) -> list[ErrorReport]:
        with self.lock:
            return list(self.errors)

    def nodes(self) -> list[tuple[str, NodeStatus | None, Heartbeat | None, float | None]]:
        """(ident, status, last heartbeat, its age in seconds) of every node heard of."""
        with self.lock:
            now = time.monotonic()
            idents = sorted(set(self.statuses) | set(self.beats))
            out = []
            for ident in idents:
                beat = self.beats.get(ident)
                out.append(
                    (ident, self.statuses.get(ident), beat[0] if beat else None, now - beat[1] if beat else None)
                )
            return out
