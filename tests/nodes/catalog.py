"""Topics of the small test nodes: a counter with commands, an echo worker pool."""

from __future__ import annotations

from pydantic import Field

from schemas.common import Id, Message, Money, Symbol
from schemas.topics import Catalog, command, event, state, work


class Add(Message):
    amount: Money
    note: str = ""


class Total(Message):
    total: Money
    applied: int


class Sleep(Message):
    seconds: float = Field(ge=0, le=60)
    blocking: bool = False  # time.sleep in the handler: blocks the node's event loop


class Slept(Message):
    seconds: float


class Boom(Message):
    message: str = "boom"


class Quote(Message):
    symbol: Symbol
    price: Money


class Job(Message):
    job: Id
    work_ms: int = Field(default=0, ge=0, le=60_000)


class Done(Message):
    job: Id
    worker: str


COUNTER_ADD = command("counter", "add", Add, Total, idempotent=True, doc="add an amount, once per msg-id")
COUNTER_ADD_ANY = command("counter", "add_again", Add, Total, doc="not idempotent: every delivery adds")
COUNTER_GET = command("counter", "get", Sleep, Total, doc="the total, after sleeping")
COUNTER_BOOM = command("counter", "boom", Boom, Total, doc="always raises")
COUNTER_PRIVATE = command(
    "counter", "private", Add, Total, senders={"probe"}, doc="only the probe may send it, like orders to trading"
)
COUNTER_TOTAL = state("counter", "total", Total, doc="retained total")
COUNTER_ADDED = event("counter", "added", Total, doc="after every add")
QUOTES = event("probe", "quote", Quote, doc="quotes the counter listens to")
PRICE = state("probe", "price", Quote, doc="a retained state the counter mirrors (node.keep)")
COUNTER_PRICE = command("counter", "price", Sleep, Quote, doc="the mirrored price; refused while unknown")
JOBS = work("echo", "jobs", Job, dispatchers={"probe"}, doc="work for the echo pool")
JOB_DONE = event("echo", "done", Done, doc="a worker finished a job")

TEST_CATALOG = Catalog(
    entries=(
        COUNTER_ADD,
        COUNTER_ADD_ANY,
        COUNTER_GET,
        COUNTER_BOOM,
        COUNTER_PRIVATE,
        COUNTER_TOTAL,
        COUNTER_ADDED,
        QUOTES,
        PRICE,
        COUNTER_PRICE,
        JOBS,
        JOB_DONE,
    ),
    nodes=frozenset({"counter", "echo", "probe"}),
    scalable={"echo": 4},
)
