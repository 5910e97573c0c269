"""A small node for the runtime's tests: a total kept in SQLite, changed by commands.

It has the shape of a real node (state in SQLite, an idempotent money command, a
retained state, an event) without any domain: the runtime's tests drive it through
a real broker, in-process or as a separate process that a test can kill.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

from edge import Context, Node, Rejected

from .catalog import (
    COUNTER_ADD,
    COUNTER_ADD_ANY,
    COUNTER_ADDED,
    COUNTER_BOOM,
    COUNTER_GET,
    COUNTER_PRICE,
    COUNTER_PRIVATE,
    COUNTER_TOTAL,
    PRICE,
    QUOTES,
    TEST_CATALOG,
    Add,
    Boom,
    Quote,
    Sleep,
    Total,
)

node = Node("counter", catalog=TEST_CATALOG, heartbeat_s=0.5)


class Ledger:
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS entries (amount TEXT NOT NULL, note TEXT, msg_id TEXT UNIQUE)")

    def add(self, amount: Decimal, note: str, msg_id: str | None = None) -> None:
        """With a msg-id, at most once per msg-id: the effect carries its key, as a real
        node's does (trading's client order id), so a command redelivered after a crash
        between this commit and the runtime's dedupe record changes nothing."""
        self.db.execute("INSERT OR IGNORE INTO entries VALUES (?, ?, ?)", (str(amount), note, msg_id))

    def total(self) -> Total:
        rows = self.db.execute("SELECT amount FROM entries").fetchall()
        return Total(total=sum((Decimal(r[0]) for r in rows), Decimal(0)), applied=len(rows))


@dataclass
class State:
    ledger: Ledger
    quotes: deque[Quote] = field(default_factory=lambda: deque(maxlen=100))  # bounded: it runs for months
    price: Quote | None = None  # mirrored from the probe's retained state


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    state = State(Ledger(str(ctx.state_dir / f"{ctx.name}.ledger.sqlite")))
    yield state
    state.ledger.db.close()


async def _apply(req: Add, ctx: Ctx, key: str | None) -> Total:
    ledger = ctx.state.ledger
    ledger.add(req.amount, req.note, key)
    total = ledger.total()
    await ctx.publish(COUNTER_TOTAL, total)
    await ctx.publish(COUNTER_ADDED, total)
    return total


@node.command(COUNTER_ADD)
async def add_once(req: Add, ctx: Ctx) -> Total:
    """The idempotent add: its effect is keyed by the msg-id, in the ledger's own write."""
    return await _apply(req, ctx, ctx.message.msg_id if ctx.message is not None else None)


async def _add(req: Add, ctx: Ctx) -> Total:
    """Adds on every delivery (`add_again`, and the restricted `private`)."""
    return await _apply(req, ctx, None)


node.command(COUNTER_ADD_ANY)(_add)
node.command(COUNTER_PRIVATE)(_add)


@node.command(COUNTER_GET)
async def get(req: Sleep, ctx: Ctx) -> Total:
    """Sleeps first: a slow handler, and a place for a test to kill the node."""
    if req.blocking:
        time.sleep(req.seconds)  # the worst a handler can do: paho's thread must keep the link
    elif req.seconds:
        await asyncio.sleep(req.seconds)
    return ctx.state.ledger.total()


@node.command(COUNTER_BOOM)
async def boom(req: Boom, ctx: Ctx) -> Total:
    raise RuntimeError(req.message)


@node.on(QUOTES)
async def on_quote(quote: Quote, ctx: Ctx) -> None:
    ctx.state.quotes.append(quote)


node.keep(PRICE, "price")


@node.command(COUNTER_PRICE)
async def price(req: Sleep, ctx: Ctx) -> Quote:
    if ctx.state.price is None:
        raise Rejected("no price yet: the retained state has not arrived")
    return ctx.state.price
