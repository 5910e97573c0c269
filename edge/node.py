"""A node: typed handlers on catalog topics, registered like Starlette's routes.

```python
node = Node("universe")

@node.lifespan
async def lifespan(ctx: Context[State]) -> AsyncIterator[State]:
    state = State(...)          # open resources; publish, call or listen if needed
    yield state                 # handlers run after this, with ctx.state = state
    state.store.close()

@node.command(t.UNIVERSE_ADD)
async def add(req: AddSecurity, ctx: Context[State]) -> Security: ...

@node.on(t.PRICES_CHANGED)
async def on_prices(evt: PricesChanged, ctx: Context[State]) -> None: ...

node.keep(t.SCORES, "scores")   # mirror another node's retained state into ctx.state.scores
```

The signature is the contract: the payload is validated against the entry's model
before the handler runs, the reply against the entry's reply model before it is sent,
and `signature_mismatches` checks the handlers' type hints against the catalog. This
module only collects; `runtime.py` runs a node, `dispatcher.py` handles its messages,
`presence.py` announces it, `delivery.py` says when a message is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
import os
import typing
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from schemas import runtime as rt
from schemas.common import utcnow
from schemas.placement import SCALABLE
from schemas.topics import PING, Catalog, Command, Topic, Topics

from . import __version__
from .context import Context
from .dispatcher import Route
from .runtime import Runtime, state_dir_of
from .settings import BrokerSettings

log = logging.getLogger("edge.node")

S = TypeVar("S")
Handler = Callable[..., Any]
Lifespan = Callable[[Context[Any]], contextlib.AbstractAsyncContextManager[Any]]

__all__ = ["Context", "Node", "Route"]


class Node:
    """Collects handlers (they can be listed: `commands`, `events`) and runs them."""

    def __init__(
        self,
        name: str,
        *,
        catalog: Catalog | None = None,
        version: str = __version__,
        heartbeat_s: float = 5.0,
        prefetch: int | None = None,
        persistent: bool | None = None,
    ) -> None:
        """`prefetch` caps how many unacknowledged messages the broker hands this node at
        once (MQTT v5 Receive Maximum); the broker's own cap (20) applies when None.

        `persistent` (default: yes, except for worker pools) keeps the node's session, and
        the commands sent to it, while it is down. A pool worker's session must die with
        it: Mosquitto goes on routing shared-subscription work to an offline member's
        session, where it waits for a worker that may never return. Its lost work is
        re-dispatched by whoever sent it.

        `catalog` (the project's by default) tells which nodes run as several workers;
        a node needs no more of it, so the default does not load it."""
        Topics().status(name)  # validates the name as a topic segment
        self.name = name
        self.scalable: dict[str, int] = dict(catalog.scalable if catalog is not None else SCALABLE)
        self.version = version
        self.heartbeat_s = heartbeat_s
        self.prefetch = prefetch
        self.persistent = name not in self.scalable if persistent is None else persistent
        self.commands: dict[str, Route] = {}
        self.events: dict[str, Route] = {}
        self.mirrors: dict[str, str] = {}  # state attribute -> topic path, of node.keep
        self._lifespan: Lifespan | None = None
        self._runtime: Runtime | None = None
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
            self._route(entry, fn, node=node)
            return fn

        return register

    def _route(self, entry: Topic, fn: Handler, *, node: str | None = None, mirror: bool = False) -> None:
        topics = Topics()
        self.events[topics.relative(topics.of(entry, node))] = Route(entry, fn, mirror=mirror)

    def keep(self, entry: Topic, attribute: str, convert: Callable[[Any], Any] | None = None) -> None:
        """Keep the latest message of a (retained) topic in `ctx.state.<attribute>`, validated,
        and converted first if `convert` is given: the mirror of another node's state. A
        restarted node gets the retained message again (see `Subscription.options`)."""

        async def store(message: Any, ctx: Context[Any]) -> None:
            setattr(ctx.state, attribute, convert(message) if convert else message)

        store.__name__ = f"keep_{attribute}"
        self._route(entry, store, mirror=True)
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

    async def enter_lifespan(self, stack: contextlib.AsyncExitStack, ctx: Context[Any]) -> None:
        if self._lifespan is not None:
            ctx.state = await stack.enter_async_context(self._lifespan(ctx))
        missing = [a for a in self.mirrors if not hasattr(ctx.state, a)]
        if missing:
            raise TypeError(
                f"{self.name}: node.keep mirrors into {', '.join(missing)}, which the state "
                f"({type(ctx.state).__name__}) does not have"
            )

    def handles(self, topics: Topics) -> list[str]:
        return sorted(
            [topics.command(self.name, verb) for verb in self.commands] + [topics.full(path) for path in self.events]
        )

    def signature_mismatches(self) -> list[str]:
        """Handlers whose type hints disagree with their catalog entry: a command's first
        parameter must be its request model and its return its reply model; an event
        handler's first parameter its message model (mirrors are checked by `keep`)."""
        problems = []
        routes = [(f"{self.name}/{verb}", r) for verb, r in self.commands.items()]
        routes += [(path, r) for path, r in self.events.items() if not r.mirror]
        for where, route in routes:
            try:
                hints = typing.get_type_hints(route.handler)
            except Exception as exc:  # a name only imported for type checking, say
                problems.append(f"{where}: type hints of {route.handler.__name__} cannot be read: {exc}")
                continue
            params = [p for p in inspect.signature(route.handler).parameters if p != "self"]
            first = hints.get(params[0]) if params else None
            if first is not route.entry.model:
                problems.append(
                    f"{where}: {route.handler.__name__} takes {getattr(first, '__name__', first)}, "
                    f"the catalog says {route.entry.model.__name__}"
                )
            if isinstance(route.entry, Command):
                returned = hints.get("return")
                if returned is not route.entry.reply:
                    problems.append(
                        f"{where}: {route.handler.__name__} returns "
                        f"{getattr(returned, '__name__', returned)}, the catalog says "
                        f"{route.entry.reply.__name__}"
                    )
        return problems

    # -- running ---------------------------------------------------------------------------
    @property
    def incarnation(self) -> int:
        return self._runtime.incarnation if self._runtime else 0

    @property
    def ident(self) -> str:
        return self._runtime.ident if self._runtime else self.name

    @property
    def _client(self) -> Any:
        return self._runtime.client if self._runtime else None

    @property
    def _ctx(self) -> Context[Any] | None:
        return self._runtime.ctx if self._runtime else None

    async def run(
        self,
        settings: BrokerSettings,
        *,
        board: str = "",
        instance: int | None = None,
        state_dir: Path | None = None,
        stop: asyncio.Event | None = None,
        ready: asyncio.Event | None = None,
    ) -> None:
        """Connect, announce, serve until `stop` is set, then say offline and leave.
        `ready` is set once the broker confirmed the first birth."""
        most = self.scalable.get(self.name, 0)
        if instance is not None and not 1 <= instance <= most:
            raise ValueError(f"{self.name} may run as instances 1..{most}, not {instance}")
        ident = self.name if instance is None else f"{self.name}_{instance}"
        self._runtime = Runtime(self, settings, ident=ident, board=board, state_dir=state_dir_of(state_dir))
        await self._runtime.serve(stop or asyncio.Event(), ready)

    def main(self) -> None:
        """Run from the environment until SIGTERM or SIGINT (what the launcher and systemd use)."""
        from . import process

        instance = os.environ.get("EDGE_INSTANCE")
        process.main([process.Hosted(self, int(instance) if instance else None)])

    def replica(self) -> Node:
        """The same handlers as a Node of its own, to run beside this one in one process
        (a second worker of a pool): a Node runs once at a time."""
        twin = copy.copy(self)
        twin._runtime = None
        twin.scalable, twin.events, twin.mirrors = dict(self.scalable), dict(self.events), dict(self.mirrors)
        twin.commands = dict(self.commands)
        twin.command(PING)(twin._ping)  # answers with its own incarnation
        return twin

    async def _ping(self, req: rt.Ping, ctx: Context[Any]) -> rt.Pong:
        return rt.Pong(node=ctx.name, incarnation=self.incarnation, echo=req.echo, at=utcnow())
