"""Request/response over MQTT v5: a client's inbox and the calls that wait on it.

A request carries a response topic (the caller's inbox, `trader/inbox/<user>/<client>/r`)
and correlation data; the node answers there. Each call parks a waiter under its
correlation id and removes it in a `finally` (aiomqtt's pattern); a reply that nobody
waits for any more (it came after the caller gave up) is dropped.

The inbox is read at QoS 0: a handler awaiting a reply while its own unacknowledged
commands fill the in-flight window would otherwise deadlock; a reply lost with the
connection is recovered by the caller's retry with the same msg-id.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ValidationError

from schemas.runtime import ErrorReply

from .errors import CallTimeout, PublishRefused, RemoteError
from .message import Incoming, Meta

if TYPE_CHECKING:
    from .client import Client

M = TypeVar("M", bound=BaseModel)


class Inbox:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.topic: str | None = None
        self._calls: dict[bytes, asyncio.Future[Incoming]] = {}

    @property
    def pending(self) -> int:
        return len(self._calls)

    async def _ensure(self) -> str:
        if self.topic is None:
            c = self.client
            user = c.settings.user or c.name
            client_id = c.client_id.replace("/", "_")
            await c.subscribe(c.topics.inbox_filter(user, client_id), lambda m: None, qos=0, retained=False)
            self.topic = c.topics.inbox(user, client_id)
        return self.topic

    def deliver(self, msg: Incoming) -> bool:
        """A reply for one of our calls? Resolve it (or drop it, if nobody waits any more)."""
        if msg.topic != self.topic or msg.correlation is None:
            return False
        fut = self._calls.get(msg.correlation)
        if fut is not None and not fut.done():
            fut.set_result(msg)
        return True

    def cancel_all(self) -> None:
        for fut in list(self._calls.values()):
            fut.cancel()

    async def request(
        self,
        topic: str,
        payload: bytes | str | BaseModel,
        *,
        timeout: float,
        retries: int,
        msg_id: str | None,
        trace_id: str | None,
    ) -> Incoming:
        inbox = await self._ensure()
        msg_id = msg_id or uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        for attempt in range(retries + 1):
            corr = uuid.uuid4().bytes
            reply: asyncio.Future[Incoming] = loop.create_future()
            self._calls[corr] = reply
            meta = Meta(
                msg_id=msg_id, source=self.client.name, trace_id=trace_id, response_topic=inbox, correlation=corr
            )
            try:
                async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel
                    ack = await self.client.send(topic, payload, qos=1, meta=meta)
                    assert ack is not None
                    # the reply may come before the PUBACK: wait for the reply, and fail it
                    # if the broker refuses the request
                    ack.add_done_callback(functools.partial(_refused_fails, reply, topic))
                    return await reply
            except TimeoutError:
                if attempt == retries:
                    raise CallTimeout(
                        f"no reply on {topic} within {timeout}s" + (f" ({retries + 1} tries)" if retries else "")
                    ) from None
            finally:
                del self._calls[corr]
        raise AssertionError("unreachable")


def parse_reply(topic: str, reply: Incoming, model: type[M]) -> M:
    if reply.user.get("status") == "error":
        raise RemoteError(topic, ErrorReply.model_validate_json(reply.payload))
    try:
        return model.model_validate_json(reply.payload)
    except ValidationError as exc:
        raise RemoteError(
            topic, ErrorReply(error=f"the reply is not a valid {model.__name__}: {exc}", kind="bad_reply")
        ) from exc


def _refused_fails(reply: asyncio.Future[Any], topic: str, ack: asyncio.Future[Any]) -> None:
    rc = None if ack.cancelled() else ack.result()
    if isinstance(rc, ReasonCode) and rc.is_failure and not reply.done():
        reply.set_exception(PublishRefused(topic, str(rc), rc.value))
