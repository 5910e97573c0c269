"""The benchmark's topics: one trivial echo command per responder.

`bench` is the runtime node measured with TCP_NODELAY (the default), `benchnagle` the
same node with TCP_NODELAY off, `benchpaho` the raw paho responder (its entry only
gives it a topic and a broker user), `benchclient` the caller's user.
"""

from __future__ import annotations

from schemas.catalog import CATALOG
from schemas.common import Message
from schemas.topics import Catalog, command, event


class EchoReq(Message):
    data: str


class EchoRep(Message):
    data: str  # same field name: the reply's JSON is byte for byte the request's


ECHO = command("bench", "echo", EchoReq, EchoRep, doc="answers the request's data")
ECHO_NAGLE = command("benchnagle", "echo", EchoReq, EchoRep, doc="the same, TCP_NODELAY off")
ECHO_PAHO = command("benchpaho", "echo", EchoReq, EchoRep, doc="the same, raw paho responder")

# A handler that publishes an event before it replies: two writes per message, the
# pattern where Nagle's algorithm bites when TCP_NODELAY is off.
ECHO_EVT = command("bench", "echo_evt", EchoReq, EchoRep, doc="publishes an event, then answers")
ECHO_EVT_NAGLE = command("benchnagle", "echo_evt", EchoReq, EchoRep, doc="the same, TCP_NODELAY off")
ECHOED = event("bench", "echoed", EchoRep)
ECHOED_NAGLE = event("benchnagle", "echoed", EchoRep)

BENCH_CATALOG = Catalog(
    entries=(ECHO, ECHO_NAGLE, ECHO_PAHO, ECHO_EVT, ECHO_EVT_NAGLE, ECHOED, ECHOED_NAGLE),
    nodes=frozenset({"bench", "benchnagle", "benchpaho", "benchclient"}),
)
FULL_CATALOG = CATALOG.merged(BENCH_CATALOG)
