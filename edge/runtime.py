"""Running a node: two threads, and the order things happen in.

The network loop (the caller's asyncio loop) drives paho, presence and acknowledgements;
the handler thread runs an event loop of its own where handlers run one at a time, so a
handler that blocks for minutes delays no keep-alive. Start: connect (subscriptions are
in place before the first packet), enter the lifespan on the handler thread (it may
publish and call; it yields the state), publish the birth, start heartbeats and the
dispatcher. Stop: start no new message, let the one in hand finish (up to `DRAIN_S`; one
interrupted after that is not acknowledged, so redelivered), publish `offline`,
disconnect, close the lifespan. Mirrors of retained state (`node.keep`) go before other
messages in the handler queue: a restarted node's session may hold commands sent while
it was down, which arrive before the retained state they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from schemas.topics import Topics, Work

from .client import Client
from .context import Context
from .delivery import AckPolicy
from .dispatcher import Dispatcher, Queued
from .message import Incoming
from .metrics import Metrics
from .presence import Presence, mark_running, mark_stopped, next_incarnation
from .settings import RUN_DIR, BrokerSettings

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("edge.runtime")

DRAIN_S = 10.0  # how long a stop waits for the handler in hand (systemd's stop timeout is 90 s)

T = TypeVar("T")


class HandlerThread:
    """A thread running an event loop of its own, for a node's handlers."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in the handler loop; wait for it from the calling loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 10)


async def _new_queue() -> asyncio.PriorityQueue[Queued]:
    """Created inside the handler loop, which it belongs to."""
    return asyncio.PriorityQueue()


class Runtime:
    """One run of a node, from connect to offline."""

    def __init__(self, node: Node, settings: BrokerSettings, *, ident: str, board: str, state_dir: Path) -> None:
        self.node, self.settings, self.ident, self.state_dir = node, settings, ident, state_dir
        self.topics = Topics(settings.root)
        self.io_loop = asyncio.get_running_loop()
        self.metrics = Metrics()
        self._tasks: set[asyncio.Future[Any]] = set()
        incarnation = next_incarnation(state_dir / f"{ident}.incarnation")
        self._running_mark = state_dir / f"{ident}.running"
        self.crashed_before = mark_running(self._running_mark, incarnation) is not None
        self.presence = Presence(
            ident,
            board=board,
            handles=node.handles(self.topics),
            incarnation=incarnation,
            topics=self.topics,
            version=node.version,
        )
        client_id = f"{settings.root.replace('/', '.')}.{ident}"
        self.client = Client(
            settings,
            name=ident,
            client_id=client_id,
            persistent=node.persistent,
            will=self.presence.will(),
            receive_maximum=node.prefetch,
        )
        self.presence.client = self.client
        # only nodes with idempotent commands pay for the store (sqlite3 costs ~1 MB of RSS)
        self.dedupe = None
        if any(r.idempotent for r in node.commands.values()):
            from .dedupe import DedupeStore

            self.dedupe = DedupeStore(state_dir / f"{ident}.dedupe.sqlite")
        self.ctx: Context[Any] = Context(
            ident, self.client, settings, state_dir, io=self.on_io, report=self._report_invalid
        )
        self.dispatcher = Dispatcher(
            name=node.name,
            ident=ident,
            commands=node.commands,
            events=node.events,
            ctx=self.ctx,
            client=self.client,
            topics=self.topics,
            dedupe=self.dedupe,
            metrics=self.metrics,
            io_loop=self.io_loop,
            background=self.background,
        )

    @property
    def incarnation(self) -> int:
        return self.presence.incarnation

    async def on_io(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the network loop (paho lives there) and wait for its result."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.io_loop))

    def background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """On the network loop: run a coroutine beside everything else, keeping a reference."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report_invalid(self, msg: Incoming, exc: Any, entry: Any) -> None:
        self.dispatcher.report_invalid(msg, exc, entry)

    def _on_own_status(self, msg: Incoming) -> None:
        if self.presence.on_own_status(msg):
            self.background(self.presence.announce())

    async def _subscribe(self, enqueue: Callable[[Incoming], None], mirror: Callable[[Incoming], None]) -> None:
        node, topics, client = self.node, self.topics, self.client
        cmd_filter = topics.commands_of(node.name)
        shared = node.name in node.scalable
        await client.subscribe(
            topics.share(node.name, cmd_filter) if shared else cmd_filter,
            enqueue,
            qos=1,
            ack=AckPolicy.ACK,
            retained=False,
        )
        for path, route in node.events.items():
            full = topics.full(path)
            flt = topics.share(route.entry.pool, full) if isinstance(route.entry, Work) else full
            await client.subscribe(
                flt,
                mirror if route.mirror else enqueue,
                qos=max(route.entry.qos, 0),
                ack=AckPolicy.ACK,
                retained=route.entry.retained,
            )
        await client.subscribe(topics.status(self.ident), self._on_own_status, qos=1, ack=AckPolicy.ACK_FIRST)
        client.on_connected = lambda _present: self.background(self.presence.announce())

    async def serve(self, stop: asyncio.Event, ready: asyncio.Event | None) -> None:
        handlers = HandlerThread(f"{self.ident}-handlers")
        queue = await handlers.run(_new_queue())
        loop, arrivals = handlers.loop, itertools.count()

        def enqueue(msg: Incoming) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (1, next(arrivals), msg))

        def mirror(msg: Incoming) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (0, next(arrivals), msg))

        await self._subscribe(enqueue, mirror)
        stack = contextlib.AsyncExitStack()
        try:
            await self.client.connect()
            try:
                await handlers.run(self.node.enter_lifespan(stack, self.ctx))
            except BaseException:
                await self.client.close()  # a clean leave: no last will for a node that never served
                raise
            self.presence.serving = True
            await self.presence.announce()
            if ready is not None:
                self.background(_set_when(self.presence.announced, ready))
            beat = asyncio.create_task(
                self.presence.heartbeat_forever(
                    self.node.heartbeat_s, self.metrics, queue.qsize, lambda: len(self._tasks)
                ),
                name=f"{self.ident}-heartbeat",
            )
            dispatcher = asyncio.run_coroutine_threadsafe(self.dispatcher.run_forever(queue), handlers.loop)
            log.info(
                "%s: online (incarnation %d) on %s:%d",
                self.ident,
                self.incarnation,
                self.settings.host,
                self.settings.port,
            )
            if self.crashed_before:
                log.warning(
                    "%s: restarted after a crash (incarnation %d, the previous one did not stop cleanly)",
                    self.ident,
                    self.incarnation,
                )
            try:
                await stop.wait()
            finally:
                self.presence.stopping = True
                beat.cancel()
                # let the handler in hand finish (its effect, dedupe record and reply belong
                # together); one that takes longer is interrupted, not acknowledged, redelivered
                self.dispatcher.drain()
                await asyncio.to_thread(self.dispatcher.idle.wait, DRAIN_S)
                dispatcher.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wrap_future(dispatcher)
                await asyncio.gather(beat, return_exceptions=True)
                await self.presence.leave()
                mark_stopped(self._running_mark)
                await self.client.close()
        finally:
            with contextlib.suppress(Exception):
                await handlers.run(stack.aclose())
            await handlers.stop()
            if self.dedupe is not None:
                self.dedupe.close()
            log.info("%s: offline", self.ident)


async def _set_when(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def state_dir_of(state_dir: Path | None) -> Path:
    path = Path(state_dir or RUN_DIR / "state")
    path.mkdir(parents=True, exist_ok=True)
    return path
