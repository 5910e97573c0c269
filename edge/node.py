"""A node: typed handlers on catalog topics, and the lifecycle around them.

```python
node = Node("universe")

@node.command(t.UNIVERSE_ADD)
async def add(req: AddSecurity, ctx: Context) -> Security: ...

@node.on(t.PRICES_CHANGED)
async def on_prices(evt: PricesChanged, ctx: Context) -> None: ...
```

The payload is validated against the entry's model before the handler runs; a reply
is validated against the entry's reply model before it is sent. Anything rejected
(bad JSON, failed validation, unknown verb, an exception in the handler) is reported on
`error/<node>` and, where a reply was asked for, answered with an `ErrorReply`; the
node's state does not change and it keeps serving.

Two threads: the network loop (paho, status, heartbeat, acks) and the handler thread,
an event loop of its own where handlers run one at a time, in arrival order (a sync
handler simply blocks that thread). A handler that blocks for minutes delays no
keep-alive. A QoS 1 message is acknowledged to the broker only after its handler
returned: a node killed inside a handler gets the message again. Handlers reach the
network through `Context` (`publish`, `call`), which hands the work to the network loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas import runtime as rt
from schemas.catalog import CATALOG
from schemas.common import Id, utcnow
from schemas.topics import HEARTBEAT, PING, Catalog, Command, Topic, Topics, Work

from . import __version__
from .client import Client, Will
from .errors import PublishRefused, Rejected
from .message import SCHEMA_VERSION, Incoming, Meta
from .metrics import Metrics
from .settings import RUN_DIR, BrokerSettings

log = logging.getLogger("edge.node")

T = TypeVar("T")
S = TypeVar("S")
Handler = Callable[..., Any]
Lifespan = Callable[["Context[Any]"], contextlib.AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class Route:
    entry: Topic
    handler: Handler
    idempotent: bool = False

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)


class Context(Generic[S]):
    """What a handler gets besides its message: publishing, calling, the current message,
    and `state`, the object the node's lifespan yielded (typed: `Context[Desk]`)."""

    def __init__(self, node: Node, client: Client, settings: BrokerSettings, state_dir: Path) -> None:
        self.node = node
        self.client = client
        self.settings = settings
        self.state_dir = state_dir
        self.message: Incoming | None = None
        self.state: S = None  # type: ignore[assignment]  # set from the lifespan before any handler runs

    @property
    def name(self) -> str:
        return self.node.ident

    @property
    def trace_id(self) -> str | None:
        return self.message.trace_id if self.message else None

    async def publish(self, entry: Topic, message: BaseModel, *, node: str | None = None,
                      trace_id: str | None = None) -> None:
        """Publish on a catalog topic (and wait for the broker's acknowledgement); the
        current message's trace id is carried on."""
        meta = Meta(source=self.name, trace_id=trace_id or self.trace_id)
        await self.node.on_io(self.client.emit(entry, message, node=node, meta=meta))

    async def send(self, entry: Topic, message: BaseModel, *, node: str | None = None,
                   trace_id: str | None = None) -> None:
        """Publish without waiting for the broker's acknowledgement (only for an in-flight
        slot), for a message whose loss its receiver recovers from: an evaluator's result
        (the coordinator sends a batch again when its result is late) saves a round trip
        per batch. It is on the wire before the handler's own message is acknowledged; a
        refusal is logged."""
        if not isinstance(message, entry.model):
            raise TypeError(f"{entry.path} carries {entry.model.__name__}, not {type(message).__name__}")
        meta = Meta(source=self.name, trace_id=trace_id or self.trace_id)
        topic = self.client.topics.of(entry, node)

        async def hand_over() -> None:
            ack = await self.client.send(topic, message, qos=entry.qos, retain=entry.retained, meta=meta)
            if ack is not None:
                ack.add_done_callback(lambda f: self.node._acknowledged(f, topic))

        await self.node.on_io(hand_over())

    async def call(self, entry: Command, request: BaseModel, *, node: str | None = None,
                   timeout: float = 5.0, retries: int = 0, trace_id: str | None = None) -> Any:
        return await self.node.on_io(self.client.call(entry, request, node=node, timeout=timeout,
                                                      retries=retries, trace_id=trace_id or self.trace_id))

    async def listen(self, entry: Topic, on_message: Callable[[Any], None], *, node: str | None = None) -> None:
        """Receive a topic beside the node's one-message-at-a-time queue, for a handler that
        waits for other messages (a coordinator collecting its workers' results while its
        cycle command runs). `on_message(model)` runs on the handlers' loop; a payload that
        fails validation is reported on `error/<node>` like any other and dropped."""
        loop = asyncio.get_running_loop()
        topic = self.client.topics.of(entry, node)
        this = self.node

        def arrived(msg: Incoming) -> None:
            try:
                model = entry.model.model_validate_json(msg.payload)
            except ValidationError as exc:
                this._background(this._reject(msg, _kind(exc), _reason(exc, entry), exc.errors(),
                                              self.client.topics))  # we are on the network loop already
                return
            loop.call_soon_threadsafe(on_message, model)

        await self.node.on_io(self.client.subscribe(topic, arrived, qos=entry.qos, retained=entry.retained))


class Node:
    """Collects handlers (like Starlette's routes, they can be listed) and runs them."""

    def __init__(self, name: str, *, catalog: Catalog = CATALOG, version: str = __version__,
                 heartbeat_s: float = 5.0, prefetch: int | None = None, persistent: bool | None = None) -> None:
        """`prefetch` caps how many unacknowledged messages the broker hands this node at
        once (MQTT v5 Receive Maximum); the broker's own cap (20) applies when None.

        `persistent` (default: yes, except for worker pools) keeps the node's session, and
        the commands sent to it, while it is down. A pool worker's session must die with
        it: Mosquitto goes on routing shared-subscription work to an offline member's
        session, where it waits for a worker that may never return. Its lost work is
        re-dispatched by whoever sent it."""
        Topics().status(name)  # validates the name as a topic segment
        self.name = name
        self.catalog = catalog
        self.version = version
        self.heartbeat_s = heartbeat_s
        self.prefetch = prefetch
        self.persistent = name not in catalog.scalable if persistent is None else persistent
        self.commands: dict[str, Route] = {}
        self.events: dict[str, Route] = {}
        self._lifespan: Lifespan | None = None
        self.mirrors: dict[str, str] = {}  # state attribute -> topic path, of node.keep
        self._serving = False  # the lifespan yielded: the birth may say online
        self.ident = name
        self.incarnation = 0
        self.metrics = Metrics()
        self._client: Client | None = None
        self._ctx: Context | None = None
        self._io_loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Incoming] | None = None
        self._stopping = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self._answer: tuple[str, bytes, Meta] | None = None  # the reply of the message in hand
        self._dedupe: Any = None  # a DedupeStore when the node has idempotent commands
        self._started = utcnow()
        self._board = ""
        self.ready: asyncio.Event | None = None  # set once the first birth is confirmed by the broker
        self.command(PING)(self._ping)

    # -- registration ------------------------------------------------------------------
    def command(self, entry: Command, *, idempotent: bool | None = None) -> Callable[[Handler], Handler]:
        """Register the handler of a command: `(request, ctx) -> reply model`."""
        if entry is not PING and entry.node != self.name:
            raise ValueError(f"{entry.path} is a command of {entry.node}, not of {self.name}")

        def register(fn: Handler) -> Handler:
            verb = PING.path.rsplit("/", 1)[1] if entry is PING else entry.verb
            if verb in self.commands and entry is not PING:
                raise ValueError(f"{self.name} already handles {verb}")
            self.commands[verb] = Route(entry, fn, entry.idempotent if idempotent is None else idempotent)
            return fn

        return register

    def on(self, entry: Topic, *, node: str | None = None) -> Callable[[Handler], Handler]:
        """Register the handler of an event, a state or a work topic: `(message, ctx) -> None`."""
        if isinstance(entry, Command):
            raise ValueError("commands are registered with node.command")

        def register(fn: Handler) -> Handler:
            topics = Topics()
            self.events[topics.relative(topics.of(entry, node))] = Route(entry, fn)
            return fn

        return register

    def keep(self, entry: Topic, attribute: str, convert: Callable[[Any], Any] | None = None) -> None:
        """Keep the latest message of a (retained) topic in `ctx.state.<attribute>`, validated,
        and converted first if `convert` is given: the mirror of another node's state. A
        restarted node gets the retained message again (see `Client.subscribe`)."""

        async def store(message: Any, ctx: Context[Any]) -> None:
            setattr(ctx.state, attribute, convert(message) if convert else message)

        store.__name__ = f"keep_{attribute}"
        self.on(entry)(store)
        self.mirrors[attribute] = entry.path

    def lifespan(self, fn: Callable[[Context[S]], AsyncIterator[S]]) -> Callable[[Context[S]], AsyncIterator[S]]:
        """Register the node's one lifespan (Starlette's stateful lifespan): an async
        generator that runs once connected, opens resources, may publish or listen, and
        yields the node's state (`ctx.state` in every handler); handlers run only after
        it yielded, and it closes its resources after the last one."""
        if self._lifespan is not None:
            raise ValueError(f"{self.name} has a lifespan already: one lifespan opens everything")
        self._lifespan = contextlib.asynccontextmanager(fn)
        return fn

    def handles(self, topics: Topics) -> list[str]:
        return sorted([topics.command(self.name, verb) for verb in self.commands]
                      + [topics.full(path) for path in self.events])

    # -- running ---------------------------------------------------------------------------
    async def run(self, settings: BrokerSettings, *, board: str = "", instance: int | None = None,
                  state_dir: Path | None = None, stop: asyncio.Event | None = None,
                  ready: asyncio.Event | None = None) -> None:
        """Connect, announce, serve until `stop` is set, then say offline and leave.

        `ready` is set once the broker confirmed the first birth (subscriptions are in place)."""
        most = self.catalog.scalable.get(self.name, 0)
        if instance is not None and not 1 <= instance <= most:
            raise ValueError(f"{self.name} may run as instances 1..{most}, not {instance}")
        self.ident = self.name if instance is None else f"{self.name}_{instance}"
        self._board = board
        self._stopping = False
        stop = stop or asyncio.Event()
        topics = Topics(settings.root)
        state_dir = Path(state_dir or RUN_DIR / "state")
        state_dir.mkdir(parents=True, exist_ok=True)
        self.incarnation = _next_incarnation(state_dir / f"{self.ident}.incarnation")
        # only nodes with idempotent commands pay for the store (sqlite3 costs ~1 MB of RSS)
        self._dedupe = None
        if any(r.idempotent for r in self.commands.values()):
            from .dedupe import DedupeStore

            self._dedupe = DedupeStore(state_dir / f"{self.ident}.dedupe.sqlite")
        self.metrics = Metrics()
        self._started = utcnow()
        self.ready = ready or asyncio.Event()
        self._io_loop = asyncio.get_running_loop()

        will = Will(topics.status(self.ident), self._status("offline", "lost").model_dump_json().encode())
        client_id = f"{settings.root.replace('/', '.')}.{self.ident}"
        client = Client(settings, name=self.ident, client_id=client_id, persistent=self.persistent, will=will,
                        receive_maximum=self.prefetch)
        self._client = client
        ctx = self._ctx = Context(self, client, settings, state_dir)

        # Handlers run in a thread with an event loop of its own; this loop only does the
        # network (paho) and the lifecycle, so no handler can hold up keep-alives or acks.
        handlers = _HandlerThread(f"{self.ident}-handlers")
        self._queue = await handlers.run(_new_queue())
        enqueue = functools.partial(handlers.loop.call_soon_threadsafe, self._queue.put_nowait)

        shared = self.name in self.catalog.scalable
        cmd_filter = topics.commands_of(self.name)
        await client.subscribe(topics.share(self.name, cmd_filter) if shared else cmd_filter,
                               enqueue, qos=1, auto_ack=False, retained=False)
        for path, route in self.events.items():
            full = topics.full(path)
            flt = topics.share(route.entry.pool, full) if isinstance(route.entry, Work) else full
            await client.subscribe(flt, enqueue, qos=max(route.entry.qos, 0), auto_ack=False,
                                   retained=route.entry.retained)
        await client.subscribe(topics.status(self.ident), self._on_own_status, qos=1)
        client.on_connected = lambda _present: self._background(self._announce())

        stack = contextlib.AsyncExitStack()
        self._serving = False
        try:
            await client.connect()
            try:
                await handlers.run(self._enter_lifespan(stack, ctx))
            except BaseException:
                await client.close()  # a clean leave: no last will for a node that never served
                raise
            self._serving = True
            await self._announce()
            beat = asyncio.create_task(self._heartbeat_forever(), name=f"{self.ident}-heartbeat")
            dispatcher = asyncio.run_coroutine_threadsafe(self._dispatch_forever(topics), handlers.loop)
            log.info("%s: online (incarnation %d) on %s:%d", self.ident, self.incarnation,
                     settings.host, settings.port)
            try:
                await stop.wait()
            finally:
                self._stopping = True
                beat.cancel()
                dispatcher.cancel()  # a handler interrupted here is not acknowledged: redelivered
                with contextlib.suppress(BaseException):
                    await asyncio.wrap_future(dispatcher)
                await asyncio.gather(beat, return_exceptions=True)
                try:
                    await client.publish(topics.status(self.ident),
                                         self._status("offline", "shutdown"), qos=1, retain=True, timeout=3)
                except Exception as exc:
                    log.warning("%s: could not publish offline: %r", self.ident, exc)
                await client.close()
        finally:
            with contextlib.suppress(Exception):
                await handlers.run(stack.aclose())
            await handlers.stop()
            if self._dedupe is not None:
                self._dedupe.close()
            log.info("%s: offline", self.ident)

    async def _enter_lifespan(self, stack: contextlib.AsyncExitStack, ctx: Context[Any]) -> None:
        if self._lifespan is not None:
            ctx.state = await stack.enter_async_context(self._lifespan(ctx))
        missing = [a for a in self.mirrors if not hasattr(ctx.state, a)]
        if missing:
            raise TypeError(f"{self.name}: node.keep mirrors into {', '.join(missing)}, which the state "
                            f"({type(ctx.state).__name__}) does not have")

    async def on_io(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the network loop (paho lives there) and wait for its result."""
        assert self._io_loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._io_loop))

    def _io_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule a call on the network loop, in order, without waiting."""
        assert self._io_loop is not None
        self._io_loop.call_soon_threadsafe(fn, *args)

    def main(self) -> None:
        """Run from the environment until SIGTERM or SIGINT (what the launcher and systemd use)."""
        logging.basicConfig(level=os.environ.get("EDGE_LOG", "INFO"),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        instance = os.environ.get("EDGE_INSTANCE")
        if os.environ.get("EDGE_HEARTBEAT_S"):  # the longrun test compresses months into minutes
            self.heartbeat_s = float(os.environ["EDGE_HEARTBEAT_S"])

        async def amain() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await self.run(BrokerSettings.from_env(), board=os.environ.get("EDGE_BOARD", ""),
                           instance=int(instance) if instance else None,
                           state_dir=Path(os.environ["EDGE_STATE_DIR"]) if os.environ.get("EDGE_STATE_DIR") else None,
                           stop=stop)

        asyncio.run(amain())

    # -- lifecycle messages ----------------------------------------------------------------
    def _status(self, state: str, reason: str = "") -> rt.NodeStatus:
        topics = Topics(self._client.settings.root if self._client else Topics().root)
        return rt.NodeStatus(node=self.ident, state=state, incarnation=self.incarnation,
                             version=self.version, board=self._board, host=socket.gethostname(),
                             pid=os.getpid(), started=self._started, at=utcnow(),
                             handles=self.handles(topics), reason=reason, schema_version=SCHEMA_VERSION)

    def _background(self, coro: Any) -> None:
        """Run a coroutine beside the dispatcher, keeping a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self) -> None:
        """Birth: on every (re)connect, since the broker may have published our will; not
        before the lifespan yielded (online means serving)."""
        if self._stopping or self._client is None or not self._serving:
            return
        try:
            await self._client.publish(self._client.topics.status(self.ident), self._status("online"),
                                       qos=1, retain=True)
            if self.ready is not None:
                self.ready.set()
        except Exception:
            log.exception("%s: could not publish the birth", self.ident)

    def _on_own_status(self, msg: Incoming) -> None:
        """A stale last will (an older incarnation's, or ours after a network blip) must not
        leave us shown offline: re-assert the birth, as Sparkplug does."""
        try:
            status = rt.NodeStatus.model_validate_json(msg.payload)
        except ValidationError:
            return
        if self._stopping or status.state != "offline":
            return
        if status.incarnation > self.incarnation:
            log.error("%s: a newer incarnation (%d) of this node exists; two copies are running?",
                      self.ident, status.incarnation)
            return
        self._background(self._announce())

    async def _heartbeat_forever(self) -> None:
        assert self._client is not None
        m = self.metrics
        while True:  # the first one at once, then every heartbeat_s
            beat = rt.Heartbeat(node=self.ident, incarnation=self.incarnation, at=utcnow(),
                                uptime_s=m.uptime(), rss_mb=m.rss_mb(), cpu_percent=m.cpu_percent(),
                                msgs_in=self._client.msgs_in, msgs_out=self._client.msgs_out,
                                errors=m.errors, handled=m.handled, latency_p50_ms=m.percentile(0.5),
                                latency_p99_ms=m.percentile(0.99), queue=self._queue.qsize(),
                                bookkeeping={**self._client.bookkeeping(), "tasks": len(self._tasks)})
            with contextlib.suppress(Exception):
                await self._client.emit(HEARTBEAT, beat, node=self.ident)
            await asyncio.sleep(self.heartbeat_s)

    # -- dispatch ------------------------------------------------------------------------------
    async def _dispatch_forever(self, topics: Topics) -> None:
        """In the handler thread: one message at a time, acknowledged once handled."""
        assert self._client is not None and self._queue is not None
        while True:
            msg = await self._queue.get()
            started = time.perf_counter()
            self._answer = None
            try:
                await self._handle(msg, topics)
            except asyncio.CancelledError:
                raise  # shutting down inside a handler: not acknowledged, so redelivered
            except Exception:  # a bug in the runtime itself: report, never die
                log.exception("%s: failed to handle %s", self.ident, msg.topic)
            # one hand-over to the network loop: the reply, then the ack (after commit)
            self._io_soon(self._finish, msg, self._answer)
            self.metrics.record(time.perf_counter() - started)

    def _finish(self, msg: Incoming, answer: tuple[str, bytes, Meta] | None) -> None:
        """On the network loop: send the reply (not awaited), acknowledge the message."""
        assert self._client is not None
        if answer is not None:
            topic, body, meta = answer
            try:
                ack = self._client.send_nowait(topic, body, qos=1, meta=meta)
            except PublishRefused as exc:
                log.error("%s: reply refused: %s", self.ident, exc)
                ack = None
            if ack is False:  # every in-flight slot is taken: wait for one in the background
                self._background(self._send_reply_later(topic, body, meta))
            elif isinstance(ack, asyncio.Future):
                # Not awaited: the effect is committed; a lost reply is recovered by the
                # caller's retry (idempotent commands answer it from the dedupe store).
                ack.add_done_callback(lambda f: self._acknowledged(f, topic))
        self._client.ack(msg)

    async def _handle(self, msg: Incoming, topics: Topics) -> None:
        parsed = topics.parse_command(msg.topic)
        if parsed is not None and parsed[0] == self.name:
            await self._handle_command(msg, parsed[1], topics)
            return
        route = self.events.get(topics.relative(msg.topic))
        if route is None:
            return
        try:
            payload = route.entry.model.model_validate_json(msg.payload)
        except ValidationError as exc:
            await self._reject(msg, _kind(exc), _reason(exc, route.entry), exc.errors(), topics)
            return
        try:
            await self._invoke(route, payload, msg)
        except Exception as exc:
            await self._reject(msg, *_failure(exc, self.ident, msg.topic), [], topics)

    async def _handle_command(self, msg: Incoming, verb: str, topics: Topics) -> None:
        assert self._client is not None
        route = self.commands.get(verb)
        if route is None:
            known = ", ".join(sorted(self.commands))
            await self._reject(msg, "unknown_verb", f"{self.name} has no command {verb!r}; it knows: {known}",
                               [], topics, verb=verb)
            return
        entry = route.entry
        assert isinstance(entry, Command)
        try:
            request = entry.model.model_validate_json(msg.payload)
        except ValidationError as exc:
            await self._reject(msg, _kind(exc), _reason(exc, entry), exc.errors(), topics, verb=verb)
            return
        dedupe_key = msg.msg_id if route.idempotent and self._dedupe is not None else None
        request_digest = ""
        if dedupe_key is not None:
            request_digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
            previous = self._dedupe.get(msg.topic, dedupe_key)
            if previous is not None:
                if not previous.same_request(request_digest):
                    await self._reject(msg, "conflict", f"msg-id {dedupe_key!r} was used before for another "
                                       f"{entry.model.__name__} on {msg.topic}; a new request needs a new msg-id "
                                       "(the first one was not changed)", [], topics, verb=verb)
                    return
                log.info("%s: %s msg-id %s handled before; answering from the dedupe store",
                         self.ident, msg.topic, dedupe_key)
                await self._reply(msg, verb, previous.reply, "ok", topics)
                return
        try:
            result = await self._invoke(route, request, msg)
            if not isinstance(result, entry.reply):
                result = entry.reply.model_validate(result)
            body = result.model_dump_json().encode()
        except Exception as exc:
            await self._reject(msg, *_failure(exc, self.ident, msg.topic), [], topics, verb=verb)
            return
        if dedupe_key is not None:
            self._dedupe.put(msg.topic, dedupe_key, body, request_digest)
        await self._reply(msg, verb, body, "ok", topics)

    async def _invoke(self, route: Route, payload: BaseModel, msg: Incoming) -> Any:
        assert self._ctx is not None
        self._ctx.message = msg
        try:
            if route.is_async:
                return await route.handler(payload, self._ctx)
            return route.handler(payload, self._ctx)  # this is the handler thread: blocking is fine
        finally:
            self._ctx.message = None

    async def _reply(self, msg: Incoming, verb: str, body: bytes, status: str, topics: Topics) -> None:
        """In the handler thread: the answer that `_finish` sends with the ack."""
        topic = msg.response_topic or topics.reply(self.name, verb)
        meta = Meta(source=self.ident, trace_id=msg.trace_id, status=status, correlation=msg.correlation)
        self._answer = (topic, body, meta)

    async def _send_reply_later(self, topic: str, body: bytes, meta: Meta) -> None:
        assert self._client is not None
        try:
            ack = await self._client.send(topic, body, qos=1, meta=meta)
        except PublishRefused as exc:
            log.error("%s: reply refused: %s", self.ident, exc)
            return
        if ack is not None:
            ack.add_done_callback(lambda f: self._acknowledged(f, topic))

    def _acknowledged(self, ack: asyncio.Future[Any], topic: str) -> None:
        """Log a message sent without waiting that the broker refused or never took."""
        if ack.cancelled():
            return
        failure = ack.exception() or ack.result()
        if isinstance(failure, BaseException) or (isinstance(failure, ReasonCode) and failure.is_failure):
            log.error("%s: the broker did not take %s: %s", self.ident, topic, failure)

    async def _reject(self, msg: Incoming, kind: str, reason: str, errors: list[Any], topics: Topics,
                      *, verb: str | None = None) -> None:
        """Report a rejected message on `error/<node>` and answer the sender if it asked."""
        assert self._client is not None
        self.metrics.errors += 1
        details = rt.error_details(errors)
        report = rt.ErrorReport(node=self.ident, topic=msg.topic, kind=kind, reason=reason, errors=details,
                                correlation_id=msg.correlation_id, message_id=_safe_id(msg.msg_id), at=utcnow())
        log.warning("%s: rejected %s: %s", self.ident, msg.topic, reason)
        self._io_soon(self._background, self._publish_report(report, topics))
        if verb is not None:
            reply = rt.ErrorReply(error=reason, kind=kind, errors=details)
            await self._reply(msg, verb, reply.model_dump_json().encode(), "error", topics)

    async def _publish_report(self, report: rt.ErrorReport, topics: Topics) -> None:
        assert self._client is not None
        try:
            await self._client.publish(topics.error(self.ident), report, qos=1, timeout=5)
        except Exception as exc:
            log.error("%s: could not publish the error report: %s", self.ident, exc)

    async def _ping(self, req: rt.Ping, ctx: Context) -> rt.Pong:
        return rt.Pong(node=self.ident, incarnation=self.incarnation, echo=req.echo, at=utcnow())


class _HandlerThread:
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


async def _new_queue() -> asyncio.Queue[Incoming]:
    """Created inside the handler loop, which it belongs to."""
    return asyncio.Queue()


def _failure(exc: Exception, ident: str, topic: str) -> tuple[str, str]:
    """(kind, reason) of a handler's exception: `Rejected` is a refusal the handler meant,
    anything else a failure, logged with its traceback."""
    if isinstance(exc, Rejected):
        log.info("%s: refused %s: %s", ident, topic, exc)
        return "refused", str(exc)
    log.error("%s: handler for %s raised", ident, topic, exc_info=exc)
    return "handler_error", f"{type(exc).__name__}: {exc}"


def _kind(exc: ValidationError) -> str:
    return "bad_json" if any(e.get("type") == "json_invalid" for e in exc.errors()) else "invalid"


def _reason(exc: ValidationError, entry: Topic) -> str:
    if _kind(exc) == "bad_json":
        return f"payload is not valid JSON (expected a {entry.model.__name__} object)"
    n = exc.error_count()
    return f"payload is not a valid {entry.model.__name__}: {n} validation error{'s' if n != 1 else ''}"


_ID = TypeAdapter(Id)


def _safe_id(value: str | None) -> str | None:
    """The sender's msg-id for the report, if it is a well-formed id."""
    if value is None:
        return None
    try:
        return _ID.validate_python(value)
    except ValidationError:
        return None


def _next_incarnation(path: Path) -> int:
    """A counter that grows with every start, kept on disk (boards may have no RTC)."""
    try:
        current = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        current = 0
    nxt = current + 1
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(nxt))
    os.replace(tmp, path)
    return nxt

