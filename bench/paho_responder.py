"""The baseline responder: raw paho-mqtt 2 (MQTT v5), no runtime.

`python -m bench.paho_responder` with MQTT_HOST/MQTT_PORT/MQTT_USER/MQTT_PASS and
BENCH_TOPIC: it subscribes to BENCH_TOPIC with QoS 1 and publishes every request's
payload back, QoS 1, to the request's v5 response topic with its correlation data.
TCP_NODELAY is set, as the runtime does. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.settings import BrokerSettings


def main() -> None:
    settings = BrokerSettings.from_env()
    topic = os.environ["BENCH_TOPIC"]
    nodelay = os.environ.get("BENCH_NODELAY", "1") != "0"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"benchpaho-{os.getpid()}", protocol=mqtt.MQTTv5)
    client.username_pw_set(settings.user, settings.password)

    def on_socket_open(c: mqtt.Client, userdata: Any, sock: Any) -> None:
        if nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        c.subscribe(topic, qos=1)

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        response_topic = getattr(msg.properties, "ResponseTopic", None)
        if not response_topic:
            return
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = msg.properties.CorrelationData
        c.publish(response_topic, msg.payload, qos=1, properties=props)

    client.on_socket_open = on_socket_open
    client.on_connect = on_connect
    client.on_message = on_message
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: client.disconnect())
    client.connect(settings.host, settings.port, keepalive=settings.keepalive)
    client.loop_forever()


if __name__ == "__main__":
    main()
