"""An asyncio MQTT v5 client on paho-mqtt 2: subscriptions, publishing, flow control.

What paho leaves to us, and where it is handled:

- it does not resubscribe after a reconnect: every `Subscription` is remembered and
  renewed in the connect callback, with its retained-message choice (`delivery.py`);
- a v5 session survives only with a stable client id, clean start off and a session
  expiry above 0: `persistent=True` sets all three (`driver.py`);
- it ignores the broker's Receive Maximum: `InflightWindow` (`window.py`);
- it reports success for publishes the broker refused: every QoS>0 publish waits for its
  acknowledgement (for QoS 2 a failing PUBREC, which `driver._Paho` passes on) and raises
  `PublishRefused` on a failure reason code;
- its 16-bit packet ids wrap: callbacks only resolve futures, a waiter is registered in
  the tick of its publish (paho writes later, so its acknowledgement cannot come first)
  and leaves the table when done; an acknowledgement nobody waits for is dropped, and
  ids still in use are never handed out again;
- messages are acknowledged by policy (`AckPolicy`), never by paho;
- request/response over the client's inbox: `inbox.py`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel

from schemas.topics import Command, Topic, Topics

from .delivery import AckPolicy, Callback, Subscription
from .driver import Driver, Will
from .errors import CallTimeout, PublishRefused, SubscribeRefused
from .inbox import Inbox, parse_reply
from .message import Incoming, Meta
from .settings import BrokerSettings
from .window import InflightWindow

log = logging.getLogger("edge.client")

M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_INFLIGHT = 20  # Mosquitto's default max_inflight_messages
_LOST = object()  # a SUBACK that will not come: the connection dropped

__all__ = ["Client", "Will", "parse_reply"]


class Client:
    """One MQTT v5 connection. Use as `async with Client(settings, name="cli") as c:`."""

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        name: str,
        client_id: str | None = None,
        persistent: bool = False,
        will: Will | None = None,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        receive_maximum: int | None = None,
        nodelay: bool | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.topics = Topics(settings.root)
        self.persistent = persistent
        self.client_id = client_id or (name if persistent else f"{name}-{uuid.uuid4().hex[:10]}")
        self.window = InflightWindow(max_inflight)
        self.msgs_in = 0
        self.msgs_out = 0
        self.on_connected: Callable[[bool], None] | None = None  # called in the loop, arg: session present
        self._subs: dict[str, Subscription] = {}
        self._by_sid: dict[int, Subscription] = {}
        self._next_sid = 1
        # Acknowledgements awaited, by packet id (PUBACK, PUBREC failure, PUBCOMP, SUBACK).
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._suback_mids: set[int] = set()
        self._unwritten_qos0: set[int] = set()  # ids of QoS 0 messages paho has not written yet
        self.inbox = Inbox(self)
        self._driver = Driver(
            settings,
            self,
            client_id=self.client_id,
            persistent=persistent,
            will=will,
            max_inflight=max_inflight,
            receive_maximum=receive_maximum,
            nodelay=settings.nodelay if nodelay is None else nodelay,
        )
        self._paho = self._driver.paho

    # -- lifecycle ------------------------------------------------------------------------
    async def connect(self, timeout: float = 10.0) -> None:
        """Open the connection; retries a refused or unreachable broker until `timeout`."""
        await self._driver.connect(timeout)

    async def close(self, *, timeout: float = 5.0) -> None:
        """Disconnect cleanly: the broker then drops the last will."""
        await self._driver.close(timeout)
        self.inbox.cancel_all()
        for fut in list(self._waiters.values()):
            fut.cancel()
        self._waiters.clear()

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def is_connected(self) -> bool:
        return self._paho.is_connected()

    async def wait_connected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._driver.connected.wait()

    @property
    def connects(self) -> int:
        return self._driver.connects

    @property
    def reconnecting(self) -> bool:
        return self._driver.reconnecting

    @property
    def inflight_limit(self) -> int:
        return self.window.limit

    @property
    def peak_in_flight(self) -> int:
        return self.window.peak

    def bookkeeping(self) -> dict[str, int]:
        """The sizes of every table that grows and shrinks with traffic: each must stay
        bounded over months of uptime (`make longrun` watches them)."""
        return {
            "waiters": len(self._waiters),
            "unwritten_qos0": len(self._unwritten_qos0),
            "calls": self.inbox.pending,
            "subscriptions": len(self._subs),
            "in_flight": self.window.used,
            "slot_waiters": self.window.waiting,
        }

    # -- what the driver reports (the `Link`) ------------------------------------------------
    def connected(self, session_present: bool, receive_maximum: int | None) -> None:
        """In paho's connect callback: renew every subscription before anything else."""
        if receive_maximum:
            self.window.lower_to(receive_maximum)
        for sub in list(self._subs.values()):
            self._paho.subscribe(sub.filter, options=sub.options(), properties=_sub_props(sub))
        loop = self._driver.loop
        if self.on_connected is not None and loop is not None:
            loop.call_soon(self.on_connected, session_present)

    def disconnected(self) -> None:
        self._unwritten_qos0.clear()  # paho drops its unsent packets with the connection
        for mid in list(self._suback_mids):  # those subscriptions are renewed on reconnect
            self.acknowledged(mid, _LOST)

    def packet_id_in_use(self, mid: int) -> bool:
        return mid in self._waiters or mid in self._unwritten_qos0

    def acknowledged(self, mid: int, result: Any) -> None:
        """An acknowledgement (or a QoS 0 message written): resolve its waiter, if any."""
        if mid in self._unwritten_qos0:
            self._unwritten_qos0.discard(mid)
            return
        fut = self._waiters.pop(mid, None)
        if fut is not None:
            if not fut.done():
                fut.set_result(result)
        elif isinstance(result, list) and any(rc.is_failure for rc in result):  # a renewed subscription
            log.error("%s: the broker refused a renewed subscription: %s", self.client_id, result)

    def arrived(self, raw: mqtt.MQTTMessage) -> None:
        """Hand a message to its subscriptions' callbacks; acknowledge it now if every one
        of them says ACK_FIRST (the strictest policy wins)."""
        try:
            msg = Incoming.from_paho(raw)
        except Exception:  # it can never be handled: acknowledge it, or it comes back forever
            log.exception("%s: could not read a message on %r; dropped", self.client_id, raw.topic)
            if raw.qos:
                self._paho.ack(raw.mid, raw.qos)
            return
        self.msgs_in += 1
        if msg.correlation is not None and self.inbox.deliver(msg):
            self.ack(msg)
            return
        subs = [self._by_sid[i] for i in msg.sub_ids if i in self._by_sid]
        if not msg.sub_ids:  # a broker without subscription identifiers
            subs = [s for s in self._subs.values() if s.matches(msg.topic)][:1]
        if len(subs) > 1:  # one message, one call of each callback
            subs = list({id(sub.callback): sub for sub in reversed(subs)}.values())[::-1]
        for sub in subs:
            try:
                sub.callback(msg)
            except Exception:
                log.exception("%s: callback for %s failed", self.client_id, sub.filter)
        if all(s.ack is AckPolicy.ACK_FIRST for s in subs):
            self.ack(msg)

    def ack(self, msg: Incoming) -> None:
        """Acknowledge a QoS>0 message to the broker."""
        if msg.qos:
            self._paho.ack(msg.mid, msg.qos)

    # -- subscribe ------------------------------------------------------------------------
    async def subscribe(
        self,
        topic_filter: str,
        callback: Callback,
        *,
        qos: int = 1,
        ack: AckPolicy = AckPolicy.ACK_FIRST,
        retained: bool = True,
        timeout: float = 10.0,
    ) -> None:
        """Subscribe now and after every reconnect. `callback` runs in the asyncio loop;
        with `ack=AckPolicy.ACK` the owner acknowledges (`ack`) once the message is handled.
        `retained`: deliver the filter's retained messages when this process subscribes."""
        old = self._subs.get(topic_filter)
        sid = old.sid if old else self._next_sid
        self._next_sid += old is None
        sub = Subscription(topic_filter, qos, callback, ack, sid, retained)
        self._subs[topic_filter] = sub
        self._by_sid[sid] = sub
        if not self.is_connected():
            return  # the connect callback subscribes
        rc, mid = self._paho.subscribe(topic_filter, options=sub.options(), properties=_sub_props(sub))
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            return  # not connected after all: the connect callback subscribes
        self._suback_mids.add(mid)
        try:
            codes = await self._wait(mid, timeout, f"SUBACK for {topic_filter}")
        finally:
            self._suback_mids.discard(mid)
        if codes is _LOST:
            return  # the connection dropped: the connect callback subscribes again
        for code in codes:
            if code.is_failure:
                self._subs.pop(topic_filter, None)
                self._by_sid.pop(sub.sid, None)
                raise SubscribeRefused(topic_filter, str(code))

    async def unsubscribe(self, topic_filter: str) -> None:
        sub = self._subs.pop(topic_filter, None)
        if sub is not None:
            self._by_sid.pop(sub.sid, None)
        if self.is_connected():
            self._paho.unsubscribe(topic_filter)

    # -- publish --------------------------------------------------------------------------
    async def publish(
        self,
        topic: str,
        payload: bytes | str | BaseModel,
        *,
        qos: int = 1,
        retain: bool = False,
        meta: Meta | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Publish and, for QoS>0, wait for the broker's acknowledgement.

        Raises `PublishRefused` when the broker answers with a failure reason code
        (ACL denial, quota, topic not allowed), which paho alone would report as success.
        """
        ack = await self.send(topic, payload, qos=qos, retain=retain, meta=meta)
        if ack is not None:
            await self.confirmed(ack, topic, timeout)

    async def send(
        self,
        topic: str,
        payload: bytes | str | BaseModel,
        *,
        qos: int = 1,
        retain: bool = False,
        meta: Meta | None = None,
    ) -> asyncio.Future[Any] | None:
        """Hand a message to paho and return the future of its acknowledgement (QoS>0)
        without waiting for it; `confirmed` checks it. Waits only for an in-flight slot."""
        if qos:
            await self.window.take()
        return self._publish_now(topic, payload, qos, retain, meta)

    def send_nowait(
        self,
        topic: str,
        payload: bytes | str | BaseModel,
        *,
        qos: int = 1,
        retain: bool = False,
        meta: Meta | None = None,
    ) -> asyncio.Future[Any] | bool | None:
        """`send` from plain code: False (nothing sent) when no in-flight slot is free."""
        if qos and not self.window.try_take():
            return False
        return self._publish_now(topic, payload, qos, retain, meta)

    def _publish_now(
        self, topic: str, payload: bytes | str | BaseModel, qos: int, retain: bool, meta: Meta | None
    ) -> asyncio.Future[Any] | None:
        """Hand the message to paho; for QoS>0 the caller holds an in-flight slot."""
        if isinstance(payload, BaseModel):
            payload = payload.model_dump_json().encode()
        props = (meta or Meta(source=self.name)).to_properties()
        if qos == 0:
            info = self._paho.publish(topic, payload, qos=0, retain=retain, properties=props)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._unwritten_qos0.add(info.mid)
            self.msgs_out += 1
            return None
        try:
            info = self._paho.publish(topic, payload, qos=qos, retain=retain, properties=props)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                raise PublishRefused(topic, mqtt.error_string(info.rc), int(info.rc))
        except BaseException:
            self.window.give()
            raise
        self.msgs_out += 1
        ack = self._waiter(info.mid)
        ack.add_done_callback(lambda _f: self.window.give())  # the slot is free when paho's is
        return ack

    @staticmethod
    async def confirmed(ack: asyncio.Future[Any], topic: str, timeout: float = 10.0) -> None:
        """Wait for a publish's acknowledgement; raise `PublishRefused` on a failure code."""
        try:
            async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel
                rc = await asyncio.shield(ack)
        except TimeoutError:
            raise CallTimeout(f"no acknowledgement of the publish to {topic} within {timeout}s") from None
        if isinstance(rc, ReasonCode) and rc.is_failure:
            raise PublishRefused(topic, str(rc), rc.value)

    def _waiter(self, mid: int) -> asyncio.Future[Any]:
        """A waiter for a packet id's acknowledgement, registered in the tick that sent it;
        it leaves the table when its acknowledgement comes (`acknowledged`), or when its
        owner gives up (`_wait`) or the client closes."""
        loop = self._driver.loop
        assert loop is not None, "connect() first"
        fut = loop.create_future()
        self._waiters[mid] = fut
        return fut

    async def _wait(self, mid: int, timeout: float, what: str) -> Any:
        fut = self._waiter(mid)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise CallTimeout(f"no {what} within {timeout}s") from None
        finally:
            if self._waiters.get(mid) is fut:  # given up: it leaves the table
                del self._waiters[mid]
                fut.cancel()

    async def emit(
        self, entry: Topic, message: BaseModel, *, node: str | None = None, meta: Meta | None = None
    ) -> None:
        """Publish a catalog entry's model on its topic with its QoS and retain flag."""
        if not isinstance(message, entry.model):
            raise TypeError(f"{entry.path} carries {entry.model.__name__}, not {type(message).__name__}")
        await self.publish(self.topics.of(entry, node), message, qos=entry.qos, retain=entry.retained, meta=meta)

    # -- request / response (inbox.py) -----------------------------------------------------
    async def request(
        self,
        topic: str,
        payload: bytes | str | BaseModel,
        *,
        timeout: float = 5.0,
        retries: int = 0,
        msg_id: str | None = None,
        trace_id: str | None = None,
    ) -> Incoming:
        """Send a request with a v5 response topic and correlation data; return the raw reply.
        On a timeout the same message (same `msg-id`) is sent again `retries` times."""
        return await self.inbox.request(
            topic, payload, timeout=timeout, retries=retries, msg_id=msg_id, trace_id=trace_id
        )

    async def call(
        self,
        entry: Command,
        request: BaseModel,
        *,
        node: str | None = None,
        timeout: float = 5.0,
        retries: int = 0,
        msg_id: str | None = None,
        trace_id: str | None = None,
    ) -> Any:
        """Request/response through a catalog command; returns the validated reply model.
        Raises `RemoteError` with the node's reasons when it rejected the request."""
        if not isinstance(request, entry.model):
            raise TypeError(f"{entry.path} takes {entry.model.__name__}, not {type(request).__name__}")
        topic = self.topics.of(entry, node)
        reply = await self.request(topic, request, timeout=timeout, retries=retries, msg_id=msg_id, trace_id=trace_id)
        return parse_reply(topic, reply, entry.reply)


def _sub_props(sub: Subscription) -> Properties:
    props = Properties(PacketTypes.SUBSCRIBE)
    props.SubscriptionIdentifier = sub.sid
    return props
