"""paho-mqtt 2 driven from an asyncio loop, as aiomqtt does.

The loop watches paho's socket and calls `loop_read`/`loop_write`; a task calls
`loop_misc` (keep-alive) every second; a lost connection is re-established with backoff
by `_reconnect_forever`. No thread hand-off on the way in or out: measured, the hand-offs
and paho's slow v5 property look-ups (see `_paho_speedups`) were most of a round trip's
cost. Whoever owns the loop must not block it (a `Node` runs handlers in a thread of
their own). The driver knows sockets and packets, not subscriptions or messages: it
reports paho's callbacks to a `Link` (the `Client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from . import _paho_speedups  # noqa: F401 - installs faster look-ups in paho's Properties
from .errors import ConnectError
from .settings import BrokerSettings

log = logging.getLogger("edge.driver")


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Link(Protocol):
    """What the driver reports, always on the loop and after paho returned."""

    def connected(self, session_present: bool, receive_maximum: int | None) -> None: ...
    def disconnected(self) -> None: ...
    def arrived(self, msg: mqtt.MQTTMessage) -> None: ...
    def acknowledged(self, mid: int, result: Any) -> None: ...
    def packet_id_in_use(self, mid: int) -> bool: ...


class _Paho(mqtt.Client):
    """paho with two fixes.

    - A PUBREC carrying a failure reason code (ACL denial, quota) ends the QoS 2 flow and
      is reported to `on_publish` as that failure; paho 2.x ignores the code, sends PUBREL
      anyway and reports success at PUBCOMP.
    - Packet ids still in use are skipped: the 16-bit counter wraps after 65,535 publishes
      and subscribes, and a new id must not be one whose acknowledgement is awaited."""

    in_use: Callable[[int], bool] = staticmethod(lambda mid: False)

    def _mid_generate(self) -> int:
        for _ in range(65535):
            mid = super()._mid_generate()
            if mid not in self._out_messages and not self.in_use(mid):
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


class Driver:
    """One paho client on the running asyncio loop: connect, read, write, keep alive,
    reconnect. Its callbacks are handed to the `Link` with `call_soon`, since paho holds
    its locks while it calls them."""

    def __init__(
        self,
        settings: BrokerSettings,
        link: Link,
        *,
        client_id: str,
        persistent: bool,
        will: Will | None,
        max_inflight: int,
        receive_maximum: int | None,
        nodelay: bool,
    ) -> None:
        self.settings = settings
        self.link = link
        self.client_id = client_id
        self.persistent = persistent
        self.receive_maximum = receive_maximum  # how many unacknowledged messages the broker may send us
        self.nodelay = nodelay
        self.connects = 0
        self.connected = asyncio.Event()  # set while a connection is up (CONNACK received)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self._first_connect: asyncio.Future[None] | None = None
        self._misc: asyncio.Task[None] | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._flush_soon = False
        self._writer_on = False
        self.paho = self._make_paho(will, max_inflight)

    def _make_paho(self, will: Will | None, max_inflight: int) -> _Paho:
        c = _Paho(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True)
        c.suppress_exceptions = True  # an exception in a callback must never kill the loop
        c.in_use = self.link.packet_id_in_use
        c.enable_logger(logging.getLogger("paho"))
        if self.settings.user:
            c.username_pw_set(self.settings.user, self.settings.password)
        if self.settings.cafile:
            c.tls_set(ca_certs=self.settings.cafile)
        if will:
            c.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = lambda _c, _u, msg: self._soon(self.link.arrived, msg)
        c.on_publish = lambda _c, _u, mid, rc, _p: self._soon(self.link.acknowledged, mid, rc)
        c.on_subscribe = lambda _c, _u, mid, rcs, _p: self._soon(self.link.acknowledged, mid, rcs)
        return c

    # -- connecting ----------------------------------------------------------------------
    async def connect(self, timeout: float) -> None:
        """Open the connection; retries a refused or unreachable broker until `timeout`."""
        self.loop = asyncio.get_running_loop()
        self._first_connect = self.loop.create_future()
        self.closing = False
        deadline = self.loop.time() + timeout
        delay = 0.1
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        self._open()
                        break
                    except OSError as exc:  # refused, unreachable: the broker may be starting
                        log.debug("%s: connect failed (%s); retrying", self.client_id, exc)
                        await asyncio.sleep(min(delay, max(0.0, deadline - self.loop.time())))
                        delay = min(delay * 2, 2.0)
                await asyncio.shield(self._first_connect)
        except TimeoutError:
            self.abandon()
            where = f"{self.settings.host}:{self.settings.port}"
            raise ConnectError(f"no connection to {where} within {timeout}s") from None
        except ConnectError:
            self.abandon()
            raise
        self._misc = self.loop.create_task(self._misc_forever(), name=f"{self.client_id}-keepalive")

    def _open(self) -> None:
        """One connection attempt: paho opens the socket and queues CONNECT; the loop reads."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry if self.persistent else 0
        if self.receive_maximum:
            props.ReceiveMaximum = self.receive_maximum
        self.paho.connect(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive,
            clean_start=not self.persistent,
            properties=props,
        )

    def abandon(self) -> None:
        self.closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        with contextlib.suppress(Exception):
            self.paho.disconnect()
        self._drop_socket()

    async def close(self, timeout: float) -> None:
        """Disconnect cleanly: the broker then drops the last will."""
        self.closing = True
        for task in (self._misc, self._reconnecting):
            if task is not None:
                task.cancel()
        if self.paho.is_connected():
            self.paho.disconnect()  # queued; the writer sends it, then the broker closes
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    while self.paho.socket() is not None:
                        await asyncio.sleep(0.005)
        self._drop_socket()

    def _drop_socket(self) -> None:
        sock = self.paho.socket()
        if sock is not None and self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
        with contextlib.suppress(Exception):
            self.paho._sock_close()  # paho has no public "close now" without a loop

    @property
    def reconnecting(self) -> bool:
        return self._reconnecting is not None

    # -- the socket on the loop ----------------------------------------------------------
    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self.nodelay:
            with contextlib.suppress(OSError):  # not a TCP socket (unix socket, websocket wrapper)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self.loop is not None
        self.loop.add_reader(sock, self._readable)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
        self._writer_on = False

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        # Packets are waiting: write them once paho has returned (several publishes of one
        # tick go out together). Only a full socket buffer makes us wait for writability.
        if not self._flush_soon and self.loop is not None:
            self._flush_soon = True
            self.loop.call_soon(self._flush)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if self._writer_on and self.loop is not None and not self.loop.is_closed():
            self.loop.remove_writer(sock)
            self._writer_on = False

    def _flush(self) -> None:
        self._flush_soon = False
        self.paho.loop_write()
        sock = self.paho.socket()
        if sock is not None and self.paho.want_write() and not self._writer_on and self.loop is not None:
            self.loop.add_writer(sock, self._writable)
            self._writer_on = True

    def _readable(self) -> None:
        self.paho.loop_read(max_packets=64)
        sock = self.paho.socket()
        # TLS may hold decrypted bytes that the selector cannot see
        while sock is not None and hasattr(sock, "pending") and sock.pending():
            self.paho.loop_read(max_packets=64)
            sock = self.paho.socket()

    def _writable(self) -> None:
        self.paho.loop_write()
        sock = self.paho.socket()
        if self._writer_on and (sock is None or not self.paho.want_write()) and self.loop is not None:
            if sock is not None:
                self.loop.remove_writer(sock)
            self._writer_on = False

    async def _misc_forever(self) -> None:
        """Keep-alive pings and the detection of a silent broker, once a second."""
        while True:
            await asyncio.sleep(1.0)
            if self.paho.socket() is not None:
                self.paho.loop_misc()

    async def _reconnect_forever(self) -> None:
        """Reconnect with a growing delay (1 s ... 30 s); the link renews subscriptions."""
        delay = 1.0
        try:
            while not self.closing and not self.paho.is_connected():
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                try:
                    self.paho.reconnect()
                except OSError as exc:
                    log.info("%s: reconnect failed (%s); next try in %.0f s", self.client_id, exc, delay)
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await self.connected.wait()
        finally:
            self._reconnecting = None

    # -- paho's connection callbacks ------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, properties: Properties | None
    ) -> None:
        if rc.is_failure:
            # paho goes on retrying with backoff; connect() gives up on the first refusal
            self._soon(self._fail_first_connect, ConnectError(f"broker refused the connection: {rc} ({rc.value})"))
            return
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        self.connects += 1
        # subscriptions are renewed here, inside paho's callback, so they precede anything
        # else written on the new connection
        self.link.connected(bool(flags.session_present), int(receive_max) if receive_max else None)
        self._soon(self._connected_in_loop)

    def _connected_in_loop(self) -> None:
        self.connected.set()
        if self._first_connect and not self._first_connect.done():
            self._first_connect.set_result(None)

    def _fail_first_connect(self, err: ConnectError) -> None:
        if self._first_connect and not self._first_connect.done():
            self._first_connect.set_exception(err)
        else:
            log.error("%s: %s", self.client_id, err)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, properties: Properties | None
    ) -> None:
        self.connected.clear()
        self.link.disconnected()
        if self.closing or self.loop is None:
            return
        log.warning("%s: disconnected (%s); reconnecting with backoff", self.client_id, rc)
        if self._reconnecting is None and self._was_connected():
            self._reconnecting = self.loop.create_task(self._reconnect_forever())

    def _was_connected(self) -> bool:
        """Whether connect() succeeded: only then does a lost connection get re-established."""
        fut = self._first_connect
        return fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run after paho's callback returned (paho holds its locks during callbacks)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon(fn, *args)
