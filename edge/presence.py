"""A node's presence on the broker: birth, last will, heartbeat, incarnation.

The birth (`node/<node>/status`, retained) says `online` with what the node handles, and
is published on every (re)connect once the node serves, since the broker may have
published the will meanwhile. The will says `offline` (reason `lost`); a clean stop
publishes `offline` (reason `shutdown`) itself. A stale will (an older incarnation's, or
ours after a network blip) must not leave the node shown offline: the node re-asserts
its birth when it sees one, as Sparkplug does. The incarnation grows with every start
and is kept on disk (boards may have no real-time clock), beside a mark that a run is
under way (`<ident>.running`), removed by a clean stop: found at the next start, it says
the previous run crashed (killed, out of memory, a power cut) without saying offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from schemas import runtime as rt
from schemas.common import utcnow
from schemas.topics import HEARTBEAT, Topics

from . import __version__
from .client import Client
from .driver import Will
from .message import SCHEMA_VERSION, Incoming
from .metrics import Metrics

log = logging.getLogger("edge.presence")


class Presence:
    def __init__(
        self,
        ident: str,
        *,
        board: str,
        handles: list[str],
        incarnation: int,
        topics: Topics,
        version: str = __version__,
    ) -> None:
        self.ident, self.board, self.handles = ident, board, handles
        self.incarnation, self.topics, self.version = incarnation, topics, version
        self.started: datetime = utcnow()
        self.serving = False  # online means serving: not before the lifespan yielded
        self.stopping = False
        self.announced = asyncio.Event()  # the first birth was acknowledged by the broker
        self.client: Client | None = None

    def status(self, state: str, reason: str = "") -> rt.NodeStatus:
        return rt.NodeStatus(
            node=self.ident,
            state=state,  # type: ignore[arg-type]
            incarnation=self.incarnation,
            version=self.version,
            board=self.board,
            host=socket.gethostname(),
            pid=os.getpid(),
            started=self.started,
            at=utcnow(),
            handles=self.handles,
            reason=reason,
            schema_version=SCHEMA_VERSION,
        )

    def will(self) -> Will:
        return Will(self.topics.status(self.ident), self.status("offline", "lost").model_dump_json().encode())

    async def announce(self) -> None:
        if self.stopping or self.client is None or not self.serving:
            return
        try:
            await self.client.publish(self.topics.status(self.ident), self.status("online"), qos=1, retain=True)
            self.announced.set()
        except Exception:
            log.exception("%s: could not publish the birth", self.ident)

    async def leave(self) -> None:
        assert self.client is not None
        self.stopping = True
        try:
            await self.client.publish(
                self.topics.status(self.ident), self.status("offline", "shutdown"), qos=1, retain=True, timeout=3
            )
        except Exception as exc:
            log.warning("%s: could not publish offline: %r", self.ident, exc)

    def on_own_status(self, msg: Incoming) -> bool:
        """Whether the birth must be re-asserted (a stale will of ours arrived)."""
        try:
            status = rt.NodeStatus.model_validate_json(msg.payload)
        except ValidationError:
            return False
        if self.stopping or status.state != "offline":
            return False
        if status.incarnation > self.incarnation:
            log.error(
                "%s: a newer incarnation (%d) of this node exists; two copies are running?",
                self.ident,
                status.incarnation,
            )
            return False
        return True

    async def heartbeat_forever(
        self, interval: float, metrics: Metrics, queued: Callable[[], int], tasks: Callable[[], int]
    ) -> None:
        client = self.client
        assert client is not None
        while True:  # the first one at once, then every interval
            beat = rt.Heartbeat(
                node=self.ident,
                incarnation=self.incarnation,
                at=utcnow(),
                uptime_s=metrics.uptime(),
                rss_mb=metrics.rss_mb(),
                cpu_percent=metrics.cpu_percent(),
                msgs_in=client.msgs_in,
                msgs_out=client.msgs_out,
                errors=metrics.errors,
                handled=metrics.handled,
                latency_p50_ms=metrics.percentile(0.5),
                latency_p99_ms=metrics.percentile(0.99),
                queue=queued(),
                bookkeeping={**client.bookkeeping(), "tasks": tasks()},
            )
            with contextlib.suppress(Exception):
                await client.emit(HEARTBEAT, beat, node=self.ident)
            await asyncio.sleep(interval)


def next_incarnation(path: Path) -> int:
    """A counter that grows with every start, kept on disk."""
    try:
        current = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        current = 0
    nxt = current + 1
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(nxt))
    os.replace(tmp, path)
    return nxt


def mark_running(path: Path, incarnation: int) -> int | None:
    """Mark a run as under way; the incarnation of the previous run if it did not stop
    cleanly (its mark is still there: 0 if unreadable), else None."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        previous = None
    except OSError:
        previous = 0
    else:
        previous = int(text) if text.isdigit() else 0
    tmp = path.with_suffix(".running-tmp")
    tmp.write_text(str(incarnation))
    os.replace(tmp, path)
    return previous


def mark_stopped(path: Path) -> None:
    """The run stopped cleanly: the next start is no restart after a crash."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
