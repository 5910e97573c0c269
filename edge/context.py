"""What a handler gets besides its message: publishing, calling, listening, the message
in hand, and `state`, the object its node's lifespan yielded (typed: `Context[Desk]`).

Handlers run on the node's handler thread; paho lives on the network loop. A `Context`
reaches the network only through `io` (run a coroutine there and wait for it), so it
needs no part of `Node` but its name and the one way to report a rejected message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from schemas import topics
from schemas.common import utcnow
from schemas.runtime import ErrorReport
from schemas.topics import Command, Topic

from .client import Client
from .delivery import AckPolicy
from .message import Incoming, Meta
from .settings import BrokerSettings

log = logging.getLogger("edge.context")

S = TypeVar("S")
T = TypeVar("T")
IO = Callable[[Coroutine[Any, Any, Any]], Awaitable[Any]]
Report = Callable[[Incoming, ValidationError, Topic], None]


class Context(Generic[S]):
    def __init__(
        self, name: str, client: Client, settings: BrokerSettings, state_dir: Path, *, io: IO, report: Report
    ) -> None:
        self.name = name
        self.client = client
        self.settings = settings
        self.state_dir = state_dir
        self.message: Incoming | None = None
        self.state: S = None  # type: ignore[assignment]  # set from the lifespan before any handler runs
        self._io = io
        self._report = report

    @property
    def trace_id(self) -> str | None:
        return self.message.trace_id if self.message else None

    def _meta(self, trace_id: str | None) -> Meta:
        return Meta(source=self.name, trace_id=trace_id or self.trace_id)

    async def publish(
        self, entry: Topic, message: BaseModel, *, node: str | None = None, trace_id: str | None = None
    ) -> None:
        """Publish on a catalog topic (and wait for the broker's acknowledgement); the
        current message's trace id is carried on."""
        await self._io(self.client.emit(entry, message, node=node, meta=self._meta(trace_id)))

    async def alert(self, about: Topic, text: str) -> None:
        """What the node found wrong by itself and an operator must see (an order of unknown
        fate, a security the provider has no prices for): logged, and on `error/<node>` as a
        report of kind `alert` about the topic `about`, beside the messages it rejected."""
        log.warning("%s: %s", self.name, text)
        report = ErrorReport(
            node=self.name, topic=self.client.topics.of(about), kind="alert", reason=text[:2000], at=utcnow()
        )
        await self.publish(topics.ERROR, report, node=self.name)

    async def send(
        self, entry: Topic, message: BaseModel, *, node: str | None = None, trace_id: str | None = None
    ) -> None:
        """Publish without waiting for the broker's acknowledgement (only for an in-flight
        slot), for a message whose loss its receiver recovers from: an evaluator's result
        (the coordinator sends a batch again when its result is late) saves a round trip
        per batch. It is on the wire before the handler's own message is acknowledged; a
        refusal is logged."""
        if not isinstance(message, entry.model):
            raise TypeError(f"{entry.path} carries {entry.model.__name__}, not {type(message).__name__}")
        topic = self.client.topics.of(entry, node)
        await self._io(
            hand_over(
                self.client, self.name, topic, message, qos=entry.qos, retain=entry.retained, meta=self._meta(trace_id)
            )
        )

    async def call(
        self,
        entry: Command,
        request: BaseModel,
        *,
        node: str | None = None,
        timeout: float = 5.0,
        retries: int = 0,
        trace_id: str | None = None,
    ) -> Any:
        return await self._io(
            self.client.call(
                entry, request, node=node, timeout=timeout, retries=retries, trace_id=trace_id or self.trace_id
            )
        )

    async def listen(
        self, entry: Topic, on_message: Callable[[Any], None], *, node: str | None = None, every_node: bool = False
    ) -> None:
        """Receive a topic beside the node's one-message-at-a-time queue, for a handler that
        waits for other messages (a coordinator collecting its workers' results while its
        cycle command runs). `on_message(model)` runs on the handlers' loop; a payload that
        fails validation is reported on `error/<node>` like any other and dropped. These
        messages are acknowledged on arrival (`AckPolicy.ACK_FIRST`). `every_node`: a per-node
        entry (status, heartbeat, error) of every node at once (a viewer such as the dashboard)."""
        loop = asyncio.get_running_loop()
        topics = self.client.topics
        topic = topics.every_node(entry) if every_node else topics.of(entry, node)
        report = self._report

        def arrived(msg: Incoming) -> None:
            try:
                model = entry.model.model_validate_json(msg.payload)
            except ValidationError as exc:
                report(msg, exc, entry)
                return
            loop.call_soon_threadsafe(on_message, model)

        await self._io(
            self.client.subscribe(topic, arrived, qos=entry.qos, ack=AckPolicy.ACK_FIRST, retained=entry.retained)
        )


async def hand_over(
    client: Client, name: str, topic: str, payload: bytes | BaseModel, *, qos: int, retain: bool, meta: Meta
) -> None:
    """Publish without waiting for the acknowledgement (only for an in-flight slot); a
    refusal that comes later is logged."""
    ack = await client.send(topic, payload, qos=qos, retain=retain, meta=meta)
    if ack is not None:
        ack.add_done_callback(lambda f: log_refusal(name, topic, f))


def log_refusal(name: str, topic: str, ack: asyncio.Future[Any]) -> None:
    """Log a message sent without waiting that the broker refused or never took."""
    if ack.cancelled():
        return
    failure = ack.exception() or ack.result()
    if isinstance(failure, BaseException) or getattr(failure, "is_failure", False):
        log.error("%s: the broker did not take %s: %s", name, topic, failure)
