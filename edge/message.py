"""Our own view of an MQTT message, converted from paho's once (as aiomqtt does).

Metadata rides in MQTT v5 properties, never in the payload, so that the payload stays
exactly the JSON of the topic's model and `mosquitto_pub -m '{...}'` works:

| user property | meaning                                                   |
| ------------- | --------------------------------------------------------- |
| `msg-id`      | unique per message; idempotent commands dedupe on it       |
| `source`      | the node or client that sent it                           |
| `trace-id`    | a planning cycle's id, carried through every message of it |
| `status`      | on replies: `ok` or `error`                               |

The schema version is announced once, in each node's birth (`NodeStatus.schema_version`),
not on every message: paho builds and parses v5 properties in pure Python, and the
per-message `schema` and content-type properties cost ~130 us of every round trip
(measured: bench/rpc.py).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from paho.mqtt.client import MQTTMessage
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class Meta:
    """The v5 properties we set and read."""

    msg_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source: str = ""
    trace_id: str | None = None
    status: str | None = None
    response_topic: str | None = None
    correlation: bytes | None = None

    def to_properties(self) -> Properties:
        props = Properties(PacketTypes.PUBLISH)
        user = [("msg-id", self.msg_id)]
        if self.source:
            user.append(("source", self.source))
        if self.trace_id:
            user.append(("trace-id", self.trace_id))
        if self.status:
            user.append(("status", self.status))
        props.UserProperty = user
        if self.response_topic:
            props.ResponseTopic = self.response_topic
        if self.correlation is not None:
            props.CorrelationData = self.correlation
        return props


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    dup: bool
    response_topic: str | None
    correlation: bytes | None
    user: dict[str, str]
    received: float
    sub_ids: tuple[int, ...] = ()

    @property
    def msg_id(self) -> str | None:
        return self.user.get("msg-id")

    @property
    def trace_id(self) -> str | None:
        return self.user.get("trace-id")

    @property
    def source(self) -> str | None:
        return self.user.get("source")

    @property
    def correlation_id(self) -> str | None:
        """The correlation data as text (hex when it is not printable)."""
        if self.correlation is None:
            return None
        try:
            text = self.correlation.decode()
        except UnicodeDecodeError:
            return self.correlation.hex()
        return text if text.isprintable() else self.correlation.hex()

    @classmethod
    def from_paho(cls, msg: MQTTMessage) -> Incoming:
        props = getattr(msg, "properties", None)
        user: dict[str, str] = {}
        response_topic = correlation = None
        sub_ids: tuple[int, ...] = ()
        if props is not None:
            for key, value in getattr(props, "UserProperty", []) or []:
                user[key] = value
            response_topic = getattr(props, "ResponseTopic", None)
            correlation = getattr(props, "CorrelationData", None)
            ids = getattr(props, "SubscriptionIdentifier", None)
            if ids is not None:
                sub_ids = tuple(ids) if isinstance(ids, list) else (int(ids),)
        return cls(
            topic=msg.topic,
            payload=bytes(msg.payload),
            qos=msg.qos,
            retain=bool(msg.retain),
            mid=msg.mid,
            dup=bool(msg.dup),
            response_topic=response_topic or None,
            correlation=correlation,
            user=user,
            received=time.monotonic(),
            sub_ids=sub_ids,
        )
