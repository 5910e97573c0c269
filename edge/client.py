"""An asyncio MQTT v5 client on paho-mqtt 2, with the traps of paho handled.

paho is driven from the asyncio loop, as aiomqtt does: the loop watches paho's socket
and calls `loop_read`/`loop_write`, and a task calls `loop_misc` (keep-alive) every
second. No thread hand-off on the way in or out: measured, the hand-offs and paho's
slow v5 property look-ups (see `_paho_speedups`) were most of a round trip's cost.
Whoever owns the loop must not block it: a `Node` runs its handlers in a thread of
their own, so keep-alives never wait for a handler. What paho leaves to us:

- it does not resubscribe after a reconnect: every subscription is remembered and
  renewed in the connect callback;
- a v5 session survives only with a stable client id, clean start off and a session
  expiry above 0: `persistent=True` sets all three;
- it ignores the broker's Receive Maximum: the CONNACK's value caps our in-flight;
- it reports success for publishes the broker refused: every QoS>0 publish waits for
  its PUBACK (or, for QoS 2, a failing PUBREC, which `_Paho` passes on) and raises
  `PublishRefused` on a failure reason code;
- messages are acknowledged manually (`ack`), after their handler finished, so a
  crash inside a handler means redelivery, not loss;
- TCP_NODELAY on the socket (without it a round trip can wait ~40 ms for a delayed ACK);
- reconnecting: with its own loop gone, `_reconnect_forever` retries with backoff.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import BaseModel, ValidationError

from schemas.runtime import ErrorReply
from schemas.topics import Command, Topic, Topics

from . import _paho_speedups  # noqa: F401 - installs faster look-ups in paho's Properties
from .errors import CallTimeout, ConnectError, PublishRefused, RemoteError, SubscribeRefused
from .message import Incoming, Meta
from .settings import BrokerSettings

log = logging.getLogger("edge.client")

M = TypeVar("M", bound=BaseModel)
Callback = Callable[[Incoming], None]

DEFAULT_MAX_INFLIGHT = 20  # Mosquitto's default max_inflight_messages



@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass
class _Sub:
    filter: str
    qos: int
    callback: Callback
    auto_ack: bool
    sid: int  # MQTT v5 subscription identifier: tells which subscription a message matched
    retained: bool = True  # whether the subscriber wants a topic's retained message when it starts
    sent: bool = False  # subscribed once already in this process


class _Paho(mqtt.Client):
    """paho with one fix: a PUBREC carrying a failure reason code (ACL denial, quota) ends
    the QoS 2 flow and is reported to `on_publish` as that failure. paho 2.x ignores the
    code, sends PUBREL anyway and reports success at PUBCOMP."""

    mids_in_use: Callable[[int], bool] = staticmethod(lambda mid: False)  # type: ignore[assignment]

    def _mid_generate(self) -> int:
        """paho's 16-bit packet id, skipping ids still in use: after a wrap a new id must not
        be taken for one whose acknowledgement is awaited, or a QoS 0 message not yet written."""
        for _ in range(65535):
            mid = super()._mid_generate()
            if mid not in self._out_messages and not self.mids_in_use(mid):
                return mid
        raise RuntimeError("all 65,535 MQTT packet ids are in use")

    def _handle_pubrec(self) -> MQTTErrorCode:
        result = _packet.decode_pubrec(self._in_packet["command"], self._in_packet["packet"], self._protocol)
        reason = result.reason
        if isinstance(reason, ReasonCode) and reason.is_failure:
            with self._out_message_mutex:
                if result.mid in self._out_messages:
                    return self._do_on_publish(result.mid, reason, result.properties)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._handle_pubrec()


_LOST = object()  # a SUBACK that will not come: the connection dropped


def topic_matches(sub: str, topic: str) -> bool:
    if sub.startswith("$share/"):
        sub = sub.split("/", 2)[2]
    return mqtt.topic_matches_sub(sub, topic)


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
        self.nodelay = settings.nodelay if nodelay is None else nodelay
        self.max_inflight = max_inflight
        self.receive_maximum = receive_maximum  # how many unacknowledged messages the broker may send us
        self.inflight_limit = max_inflight  # lowered to the broker's Receive Maximum
        self._in_flight = 0
        self.peak_in_flight = 0
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.msgs_in = 0
        self.msgs_out = 0
        self.connects = 0
        self.on_connected: Callable[[bool], None] | None = None  # called in the loop, arg: session present
        self._will = will
        self._subs: dict[str, _Sub] = {}
        self._by_sid: dict[int, _Sub] = {}
        self._next_sid = 1
        # Acknowledgements awaited, by packet id: registered in the tick of the publish or
        # subscribe (paho writes later), removed when done. An acknowledgement nobody awaits
        # (a QoS 0 write, a renewed subscription, a waiter that gave up) is dropped.
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._unwritten_qos0: set[int] = set()  # ids of QoS 0 messages paho has not written yet
        self._calls: dict[bytes, asyncio.Future[Incoming]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._first_connect: asyncio.Future[None] | None = None
        self._inbox: str | None = None
        self._closing = False
        self._misc: asyncio.Task[None] | None = None
        self._suback_mids: set[int] = set()
        self._flush_soon = False
        self._writer_on = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._paho = self._make_paho()

    # -- paho set-up -------------------------------------------------------------
    def _make_paho(self) -> mqtt.Client:
        c = _Paho(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv5, manual_ack=True)
        c.suppress_exceptions = True  # an exception in a callback must never kill the loop
        c.mids_in_use = self._mid_in_use  # type: ignore[method-assign]
        c.enable_logger(logging.getLogger("paho"))
        if self.settings.user:
            c.username_pw_set(self.settings.user, self.settings.password)
        if self.settings.cafile:
            c.tls_set(ca_certs=self.settings.cafile)
        if self._will:
            c.will_set(self._will.topic, self._will.payload, qos=self._will.qos, retain=self._will.retain)
        c.max_inflight_messages_set(self.max_inflight)
        c.max_queued_messages_set(0)
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = self._on_subscribe
        return c

    def _mid_in_use(self, mid: int) -> bool:
        return mid in self._waiters or mid in self._unwritten_qos0

    # -- lifecycle ------------------------------------------------------------------
    async def connect(self, timeout: float = 10.0) -> None:
        """Open the connection; retries a refused or unreachable broker until `timeout`."""
        self._loop = asyncio.get_running_loop()
        self._first_connect = self._loop.create_future()
        self._closing = False
        deadline = self._loop.time() + timeout
        delay = 0.1
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        self._open()
                        break
                    except OSError as exc:  # refused, unreachable: the broker may be starting
                        log.debug("%s: connect failed (%s); retrying", self.client_id, exc)
                        await asyncio.sleep(min(delay, max(0.0, deadline - self._loop.time())))
                        delay = min(delay * 2, 2.0)
                await asyncio.shield(self._first_connect)
        except TimeoutError:
            self._abandon()
            where = f"{self.settings.host}:{self.settings.port}"
            raise ConnectError(f"no connection to {where} within {timeout}s") from None
        except ConnectError:
            self._abandon()
            raise
        self._misc = self._loop.create_task(self._misc_forever(), name=f"{self.client_id}-keepalive")

    def _open(self) -> None:
        """One connection attempt: paho opens the socket and queues CONNECT; the loop reads."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry if self.persistent else 0
        if self.receive_maximum:
            props.ReceiveMaximum = self.receive_maximum
        self._paho.connect(self.settings.host, self.settings.port, keepalive=self.settings.keepalive,
                           clean_start=not self.persistent, properties=props)

    def _abandon(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        with contextlib.suppress(Exception):
            self._paho.disconnect()
        self._drop_socket()

    async def close(self, *, timeout: float = 5.0) -> None:
        """Disconnect cleanly: the broker then drops the last will."""
        self._closing = True
        for task in (self._misc, self._reconnecting):
            if task is not None:
                task.cancel()
        if self._paho.is_connected():
            self._paho.disconnect()  # queued; the writer sends it, then the broker closes
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    while self._paho.socket() is not None:
                        await asyncio.sleep(0.005)
        self._drop_socket()
        for fut in list(self._calls.values()) + list(self._waiters.values()):
            if not fut.done():
                fut.cancel()

    def _drop_socket(self) -> None:
        sock = self._paho.socket()
        if sock is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        with contextlib.suppress(Exception):
            self._paho._sock_close()  # paho has no public "close now" without a loop

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def bookkeeping(self) -> dict[str, int]:
        """The sizes of every table that grows and shrinks with traffic: each must stay
        bounded over months of uptime (the longrun test watches them)."""
        return {"waiters": len(self._waiters), "unwritten_qos0": len(self._unwritten_qos0),
                "calls": len(self._calls), "subscriptions": len(self._subs), "in_flight": self._in_flight,
                "slot_waiters": len(self._slot_waiters)}

    def is_connected(self) -> bool:
        return self._paho.is_connected()

    async def wait_connected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    # -- driving paho from the asyncio loop (as aiomqtt does) ------------------------------
    # paho's socket is watched by this loop: reads and writes happen here, with no thread
    # hand-off. Handlers never run here: a Node runs them in a thread of their own, so a
    # slow handler cannot delay keep-alives.
    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self.nodelay:
            with contextlib.suppress(OSError):  # not a TCP socket (unix socket, websocket wrapper)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._loop is not None
        self._loop.add_reader(sock, self._readable)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        self._writer_on = False

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # Packets are waiting: write them once paho has returned (several publishes of one
        # tick go out together). Only a full socket buffer makes us wait for writability.
        if not self._flush_soon and self._loop is not None:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._writer_on and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_writer(sock)
            self._writer_on = False

    def _flush(self) -> None:
        self._flush_soon = False
        self._paho.loop_write()
        sock = self._paho.socket()
        if sock is not None and self._paho.want_write() and not self._writer_on and self._loop is not None:
            self._loop.add_writer(sock, self._writable)
            self._writer_on = True

    def _readable(self) -> None:
        self._paho.loop_read(max_packets=64)
        sock = self._paho.socket()
        # TLS may hold decrypted bytes that the selector cannot see
        while sock is not None and hasattr(sock, "pending") and sock.pending():
            self._paho.loop_read(max_packets=64)
            sock = self._paho.socket()

    def _writable(self) -> None:
        self._paho.loop_write()
        sock = self._paho.socket()
        if self._writer_on and (sock is None or not self._paho.want_write()) and self._loop is not None:
            if sock is not None:
                self._loop.remove_writer(sock)
            self._writer_on = False

    async def _misc_forever(self) -> None:
        """Keep-alive pings and the detection of a silent broker, once a second."""
        while True:
            await asyncio.sleep(1.0)
            if self._paho.socket() is not None:
                self._paho.loop_misc()

    async def _reconnect_forever(self) -> None:
        """Reconnect with a growing delay (1 s ... 30 s); subscriptions are renewed on connect."""
        delay = 1.0
        try:
            while not self._closing and not self._paho.is_connected():
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                try:
                    self._paho.reconnect()
                except OSError as exc:
                    log.info("%s: reconnect failed (%s); next try in %.0f s", self.client_id, exc, delay)
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await self._connected.wait()
        finally:
            self._reconnecting = None

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                    properties: Properties | None) -> None:
        if rc.is_failure:
            # paho goes on retrying with backoff; connect() gives up on the first refusal
            err = ConnectError(f"broker refused the connection: {rc} ({rc.value})")
            self._call_soon(self._fail_first_connect, err)
            return
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        if receive_max:  # paho ignores it (and cannot change its own cap once connected)
            self.inflight_limit = min(self.max_inflight, int(receive_max))
        subs = list(self._subs.values())
        for sub in subs:
            client.subscribe(sub.filter, options=self._options(sub), properties=self._sub_props(sub))
        self.connects += 1
        self._call_soon(self._connected_in_loop, bool(flags.session_present))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode,
                       properties: Properties | None) -> None:
        self._connected.clear()
        self._unwritten_qos0.clear()  # paho drops its unsent packets with the connection
        for mid in list(self._suback_mids):  # those subscriptions are renewed on reconnect
            self._settle(mid, _LOST)
        if self._closing or self._loop is None:
            return
        log.warning("%s: disconnected (%s); reconnecting with backoff", self.client_id, rc)
        if self._reconnecting is None and self._was_connected():
            self._reconnecting = self._loop.create_task(self._reconnect_forever())

    def _was_connected(self) -> bool:
        """Whether connect() succeeded: only then does a lost connection get re-established."""
        fut = self._first_connect
        return fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            incoming = Incoming.from_paho(msg)
        except Exception:  # never let a bad message reach paho's loop
            log.exception("%s: could not read a message on %s", self.client_id, msg.topic)
            if msg.qos:
                client.ack(msg.mid, msg.qos)
            return
        self.msgs_in += 1
        self._call_soon(self._dispatch, incoming)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode,
                    properties: Properties | None) -> None:
        self._settle(mid, rc)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode],
                      properties: Properties | None) -> None:
        if mid not in self._waiters and any(rc.is_failure for rc in rcs):  # a renewal after a reconnect
            log.error("%s: the broker refused a renewed subscription: %s", self.client_id, rcs)
        self._settle(mid, rcs)

    def _settle(self, mid: int, result: Any) -> None:
        if mid in self._unwritten_qos0:  # paho reports a QoS 0 message once written
            self._unwritten_qos0.discard(mid)
            return
        fut = self._waiters.get(mid)
        if fut is not None:
            self._call_soon(_resolve, fut, result)

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run after paho's callback returned (paho holds its locks during callbacks)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon(fn, *args)

    # -- in the loop --------------------------------------------------------------------
    def _fail_first_connect(self, err: ConnectError) -> None:
        if self._first_connect and not self._first_connect.done():
            self._first_connect.set_exception(err)
        else:
            log.error("%s: %s", self.client_id, err)

    def _connected_in_loop(self, session_present: bool) -> None:
        self._connected.set()
        if self._first_connect and not self._first_connect.done():
            self._first_connect.set_result(None)
        if self.on_connected:
            self.on_connected(session_present)

    def _dispatch(self, msg: Incoming) -> None:
        if msg.correlation is not None and msg.topic == self._inbox:
            fut = self._calls.pop(msg.correlation, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            self.ack(msg)
            return
        subs = [self._by_sid[i] for i in msg.sub_ids if i in self._by_sid]
        if not msg.sub_ids:  # a broker without subscription identifiers
            subs = [s for s in self._subs.values() if topic_matches(s.filter, msg.topic)][:1]
        for sub in subs:
            try:
                sub.callback(msg)
            except Exception:
                log.exception("%s: callback for %s failed", self.client_id, sub.filter)
        if all(s.auto_ack for s in subs):
            self.ack(msg)

    def ack(self, msg: Incoming) -> None:
        """Acknowledge a QoS>0 message to the broker (after its effect is committed)."""
        if msg.qos:
            self._paho.ack(msg.mid, msg.qos)

    # -- subscribe ------------------------------------------------------------------------
    @staticmethod
    def _sub_props(sub: _Sub) -> Properties:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = sub.sid
        return props

    @staticmethod
    def _options(sub: _Sub) -> SubscribeOptions:
        """Retained messages: a subscription that wants them gets them the first time this
        process subscribes (retainHandling 0: even when a persistent session kept the
        subscription, so a restarted node refills its mirrors), and not when it is renewed
        after a reconnect (1: the session queued whatever changed meanwhile, and a lost
        session makes the subscription new). Commands and work never want them (2): a
        command retained by mistake must not run again at every start."""
        handling = (1 if sub.sent else 0) if sub.retained else 2
        sub.sent = True
        return SubscribeOptions(qos=sub.qos, retainHandling=handling)

    async def subscribe(self, topic_filter: str, callback: Callback, *, qos: int = 1,
                        auto_ack: bool = True, retained: bool = True, timeout: float = 10.0) -> None:
        """Subscribe now and after every reconnect. `callback` runs in the asyncio loop;
        with `auto_ack=False` it must call `ack` itself once the message is handled.
        `retained`: deliver the filter's retained messages when this process subscribes."""
        old = self._subs.get(topic_filter)
        sid = old.sid if old else self._next_sid
        self._next_sid += old is None
        sub = _Sub(topic_filter, qos, callback, auto_ack, sid, retained)
        self._subs[topic_filter] = sub
        self._by_sid[sid] = sub
        if not self.is_connected():
            return  # the connect callback subscribes
        rc, mid = self._paho.subscribe(topic_filter, options=self._options(sub), properties=self._sub_props(sub))
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
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
    async def publish(self, topic: str, payload: bytes | str | BaseModel, *, qos: int = 1,
                      retain: bool = False, meta: Meta | None = None, timeout: float = 10.0) -> None:
        """Publish and, for QoS>0, wait for the broker's acknowledgement.

        Raises `PublishRefused` when the broker answers with a failure reason code
        (ACL denial, quota, topic not allowed), which paho alone would report as success.
        """
        ack = await self.send(topic, payload, qos=qos, retain=retain, meta=meta)
        if ack is not None:
            await self.confirmed(ack, topic, timeout)

    async def send(self, topic: str, payload: bytes | str | BaseModel, *, qos: int = 1,
                   retain: bool = False, meta: Meta | None = None) -> asyncio.Future[Any] | None:
        """Hand a message to paho and return the future of its acknowledgement (QoS>0)
        without waiting for it; `confirmed` checks it. Waits only for an in-flight slot."""
        if qos:
            await self._take_slot()  # never more in flight than the broker's Receive Maximum
        return self._publish_now(topic, payload, qos, retain, meta)

    def send_nowait(self, topic: str, payload: bytes | str | BaseModel, *, qos: int = 1,
                    retain: bool = False, meta: Meta | None = None) -> asyncio.Future[Any] | bool | None:
        """`send` from plain code: False (nothing sent) when no in-flight slot is free."""
        if qos:
            if self._in_flight >= self.inflight_limit or self._slot_waiters:
                return False
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        return self._publish_now(topic, payload, qos, retain, meta)

    def _publish_now(self, topic: str, payload: bytes | str | BaseModel, qos: int, retain: bool,
                     meta: Meta | None) -> asyncio.Future[Any] | None:
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
            self._give_slot()
            raise
        self.msgs_out += 1
        ack = self._future_of(info.mid)
        ack.add_done_callback(lambda _f: self._give_slot())  # the slot is free when paho's is
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

    async def _take_slot(self) -> None:
        while self._in_flight >= self.inflight_limit:
            waiter = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            await waiter
        self._in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def _give_slot(self) -> None:
        self._in_flight -= 1
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def _future_of(self, mid: int) -> asyncio.Future[Any]:
        """A waiter for a packet id's acknowledgement, registered in the tick that sent it
        (paho writes later, so the acknowledgement cannot have come); it leaves the table
        when it is done, resolved or cancelled."""
        assert self._loop is not None, "connect() first"
        fut = self._loop.create_future()
        self._waiters[mid] = fut
        fut.add_done_callback(functools.partial(self._forget, mid))
        return fut

    def _forget(self, mid: int, fut: asyncio.Future[Any]) -> None:
        if self._waiters.get(mid) is fut:
            del self._waiters[mid]

    async def _wait(self, mid: int, timeout: float, what: str) -> Any:
        fut = self._future_of(mid)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise CallTimeout(f"no {what} within {timeout}s") from None
        finally:
            fut.cancel()  # done already, or given up: either way it leaves the table

    async def emit(self, entry: Topic, message: BaseModel, *, node: str | None = None,
                   meta: Meta | None = None) -> None:
        """Publish a catalog entry's model on its topic with its QoS and retain flag."""
        if not isinstance(message, entry.model):
            raise TypeError(f"{entry.path} carries {entry.model.__name__}, not {type(message).__name__}")
        await self.publish(self.topics.of(entry, node), message, qos=entry.qos,
                           retain=entry.retained, meta=meta)

    # -- request / response -------------------------------------------------------------
    async def _ensure_inbox(self) -> str:
        if self._inbox is None:
            user = self.settings.user or self.name
            client = self.client_id.replace("/", "_")
            inbox = self.topics.inbox(user, client)
            # QoS 0: replies must not wait for a slot in the in-flight window that the
            # node's own unacknowledged commands fill (a handler awaiting a reply would
            # deadlock); a reply lost with the connection is recovered by the retry.
            await self.subscribe(self.topics.inbox_filter(user, client), lambda m: None, qos=0, retained=False)
            self._inbox = inbox
        return self._inbox

    async def request(self, topic: str, payload: bytes | str | BaseModel, *, timeout: float = 5.0,
                      retries: int = 0, msg_id: str | None = None, trace_id: str | None = None) -> Incoming:
        """Send a request with a v5 response topic and correlation data; return the raw reply.

        On a timeout the same message (same `msg-id`) is sent again `retries` times:
        idempotent commands answer a redelivery from their dedupe store.
        """
        inbox = await self._ensure_inbox()
        msg_id = msg_id or uuid.uuid4().hex
        assert self._loop is not None
        for attempt in range(retries + 1):
            corr = uuid.uuid4().bytes
            fut: asyncio.Future[Incoming] = self._loop.create_future()
            self._calls[corr] = fut
            meta = Meta(msg_id=msg_id, source=self.name, trace_id=trace_id,
                        response_topic=inbox, correlation=corr)
            try:
                async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel
                    ack = await self.send(topic, payload, qos=1, meta=meta)
                    assert ack is not None
                    # the reply may come before the PUBACK: wait for the reply, and fail it
                    # if the broker refuses the request
                    ack.add_done_callback(functools.partial(_refused_fails, fut, topic))
                    return await fut
            except TimeoutError:
                if attempt == retries:
                    raise CallTimeout(f"no reply on {topic} within {timeout}s"
                                      + (f" ({retries + 1} tries)" if retries else "")) from None
            finally:
                self._calls.pop(corr, None)
        raise AssertionError("unreachable")

    async def call(self, entry: Command, request: BaseModel, *, node: str | None = None,
                   timeout: float = 5.0, retries: int = 0, msg_id: str | None = None,
                   trace_id: str | None = None) -> Any:
        """Request/response through a catalog command; returns the validated reply model.

        Raises `RemoteError` with the node's reasons when it rejected the request."""
        if not isinstance(request, entry.model):
            raise TypeError(f"{entry.path} takes {entry.model.__name__}, not {type(request).__name__}")
        topic = self.topics.of(entry, node)
        reply = await self.request(topic, request, timeout=timeout, retries=retries,
                                   msg_id=msg_id, trace_id=trace_id)
        return parse_reply(topic, reply, entry.reply)


def parse_reply(topic: str, reply: Incoming, model: type[M]) -> M:
    if reply.user.get("status") == "error":
        raise RemoteError(topic, ErrorReply.model_validate_json(reply.payload))
    try:
        return model.model_validate_json(reply.payload)
    except ValidationError as exc:
        raise RemoteError(topic, ErrorReply(error=f"the reply is not a valid {model.__name__}: {exc}",
                                            kind="bad_reply")) from exc


def _refused_fails(reply: asyncio.Future[Any], topic: str, ack: asyncio.Future[Any]) -> None:
    rc = None if ack.cancelled() else ack.result()
    if isinstance(rc, ReasonCode) and rc.is_failure and not reply.done():
        reply.set_exception(PublishRefused(topic, str(rc), rc.value))


def _resolve(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.done():
        fut.set_result(result)
