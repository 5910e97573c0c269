"""When a message is acknowledged to the broker: one policy per subscription.

MQTT 5 has no negative acknowledgement: a QoS 1 message that is not acknowledged is
delivered again only when the connection (or the process) is renewed. So the one choice
is *when* to acknowledge, made per subscription as FastStream's `AckPolicy` does:

| policy        | acknowledged                                     | used for                        |
| ------------- | ------------------------------------------------ | ------------------------------- |
| `ACK_FIRST`   | as it arrives, before anything runs              | replies in the inbox, a node's  |
|               |                                                  | own status, `Context.listen`    |
| `ACK`         | after the handler's outcome was applied: its     | a node's commands, events,      |
|               | dedupe record committed and its reply handed to  | states and work                 |
|               | the network; a stop lets the handler in hand     |                                 |
|               | finish (`runtime.DRAIN_S`); one interrupted      |                                 |
|               | after that, or by a crash, is never acknowledged |                                 |
|               | and so delivered again                           |                                 |

A message that cannot even be read (no valid topic or properties) can never be handled:
it is acknowledged on arrival whatever the policy, and logged. `Outcome` is what handling
a message produced; `Dispatcher.settle` (edge/dispatcher.py) is the one function that
applies it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from .message import Incoming, Meta

Callback = Callable[[Incoming], None]


class AckPolicy(enum.Enum):
    ACK_FIRST = "ack_first"
    ACK = "ack"


@dataclass
class Subscription:
    """A filter with its callback and delivery choices, renewed on every reconnect."""

    filter: str
    qos: int
    callback: Callback
    ack: AckPolicy
    sid: int  # MQTT v5 subscription identifier: tells which subscription a message matched
    retained: bool = True  # deliver the filter's retained messages when this process subscribes
    sent: bool = False  # subscribed once already in this process

    def matches(self, topic: str) -> bool:
        flt = self.filter.split("/", 2)[2] if self.filter.startswith("$share/") else self.filter
        return mqtt.topic_matches_sub(flt, topic)

    def options(self) -> SubscribeOptions:
        """Retained messages: a subscription that wants them gets them the first time this
        process subscribes (retainHandling 0: even when a persistent session kept the
        subscription, so a restarted node refills its mirrors), not when it is renewed after
        a reconnect (1: the session queued whatever changed meanwhile, and a lost session
        makes the subscription new). Commands and work never want them (2): a command
        retained by mistake must not run again at every start."""
        handling = (1 if self.sent else 0) if self.retained else 2
        self.sent = True
        return SubscribeOptions(qos=self.qos, retainHandling=handling)


@dataclass(frozen=True)
class Reply:
    topic: str
    body: bytes
    meta: Meta


@dataclass(frozen=True)
class Record:
    """An idempotent command's reply, kept under its msg-id with its request's digest."""

    topic: str
    msg_id: str
    body: bytes
    digest: str


@dataclass(frozen=True)
class Outcome:
    """What handling one message produced: the reply to send (if one was asked for), and
    the dedupe record to commit before it. A handler that was interrupted has no outcome,
    and its message is not acknowledged."""

    reply: Reply | None = None
    record: Record | None = None
