"""The baseline: raw paho-mqtt 2 (MQTT v5) request/response, without the runtime.

Two processes, started by bench/rpc.py, neither of which imports `edge` (so that
nothing the runtime might do to paho in its own process reaches the baseline):

- `python -m bench.rawpaho responder`: subscribes to BENCH_TOPIC with QoS 1 and
  publishes each request's payload back, QoS 1, to the request's v5 response topic
  with its correlation data, from within paho's callback (`loop_forever`).
- `python -m bench.rawpaho requester`: paho's network thread (`loop_start`), a v5
  response topic and correlation data, a `threading.Event` per call. It reads
  commands on stdin (`wait`, `run N`) and answers each with one JSON line on stdout:
  `run N` gives the N round trips in seconds. Its inbox is subscribed with QoS
  BENCH_INBOX_QOS (default 1; bench/rpc.py passes the QoS the runtime's replies arrive with).

Both connect with MQTT_HOST/MQTT_PORT/MQTT_USER/MQTT_PASS (EDGE_ROOT for the inbox)
and set TCP_NODELAY, as the runtime does (BENCH_NODELAY=0 turns it off).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def make_client(client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(os.environ.get("MQTT_USER"), os.environ.get("MQTT_PASS"))
    nodelay = os.environ.get("BENCH_NODELAY", "1") != "0"

    def on_socket_open(c: mqtt.Client, userdata: Any, sock: Any) -> None:
        if nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    client.on_socket_open = on_socket_open
    return client


def connect(client: mqtt.Client) -> None:
    client.connect(os.environ.get("MQTT_HOST", "127.0.0.1"), int(os.environ.get("MQTT_PORT", "1883")), keepalive=15)


def responder() -> None:
    topic = os.environ["BENCH_TOPIC"]
    client = make_client(f"benchpaho-{os.getpid()}")

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        c.subscribe(topic, qos=1)

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        response_topic = getattr(msg.properties, "ResponseTopic", None)
        if not response_topic:
            return
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = msg.properties.CorrelationData
        c.publish(response_topic, msg.payload, qos=1, properties=props)

    client.on_connect = on_connect
    client.on_message = on_message
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: client.disconnect())
    connect(client)
    client.loop_forever()


class Requester:
    def __init__(self, request_topic: str) -> None:
        self.request_topic = request_topic
        self.client_id = f"benchclient-paho-{uuid.uuid4().hex[:8]}"
        root = os.environ.get("EDGE_ROOT", "trader")
        self.inbox = f"{root}/inbox/{os.environ.get('MQTT_USER')}/{self.client_id}/r"
        self._reply = threading.Event()
        self._subscribed = threading.Event()
        self._expected: bytes | None = None
        self._counter = 0
        c = self.paho = make_client(self.client_id)
        inbox_qos = int(os.environ.get("BENCH_INBOX_QOS", "1"))
        c.on_connect = lambda client, *_: client.subscribe(self.inbox, qos=inbox_qos)
        c.on_subscribe = lambda *_: self._subscribed.set()
        c.on_message = self._on_message

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if getattr(msg.properties, "CorrelationData", None) == self._expected:
            self._reply.set()

    def start(self, timeout: float = 10.0) -> None:
        connect(self.paho)
        self.paho.loop_start()
        if not self._subscribed.wait(timeout):
            raise RuntimeError("no SUBACK for the inbox")

    def stop(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()

    def call(self, payload: bytes, timeout: float = 5.0) -> None:
        self._counter += 1
        corr = self._counter.to_bytes(8, "big")
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.inbox
        props.CorrelationData = corr
        self._reply.clear()
        self._expected = corr
        self.paho.publish(self.request_topic, payload, qos=1, properties=props)
        if not self._reply.wait(timeout):
            raise TimeoutError(f"no reply on {self.inbox} within {timeout}s")

    def wait_responder(self, payload: bytes, timeout: float = 30.0) -> None:
        """Call until the responder answers (it may not have subscribed yet)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call(payload, timeout=1.0)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def run(self, payload: bytes, n: int) -> list[float]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.call(payload)
            out.append(time.perf_counter() - t0)
        return out


def requester() -> None:
    req = Requester(os.environ["BENCH_TOPIC"])
    payload = os.environ["BENCH_PAYLOAD"].encode()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    req.start()
    print(json.dumps({"ready": True}), flush=True)
    try:
        for line in sys.stdin:
            cmd = line.split()
            try:
                if cmd[0] == "wait":
                    req.wait_responder(payload)
                    answer: dict[str, Any] = {"ok": True}
                elif cmd[0] == "run":
                    answer = {"samples": req.run(payload, int(cmd[1]))}
                else:
                    answer = {"error": f"unknown command {line.strip()!r}"}
            except Exception as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    finally:
        req.stop()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["responder"]:
        responder()
    elif args == ["requester"]:
        requester()
    else:
        sys.exit("usage: python -m bench.rawpaho responder|requester")


if __name__ == "__main__":
    main()
