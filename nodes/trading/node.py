"""The trading node's wiring: the only process that sends orders to a broker.

An order is checked by the desk (`desk.py`: the halt flag, the limits of `limits.py`
counting what this node's open orders already hold), written to the outbox (`outbox.py`)
and taken to the broker by the clerk (`clerk.py`), whose state machine (`lifecycle.py`)
never sends an order twice: the same client order id again (a redelivery, a plan approved
twice, a caller's retry, a restart) finds its row and is answered with its state.
`trading/order` answers within `TRADING_ANSWER_S`; every later change is published on
`evt/trading/order`. Orders whose fate is unknown are listed, retained, on
`state/trading/attention` and reported on `error/trading` until an operator settles them
(`trading/settle`).

Configuration: `settings.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from edge import Context, Node, Rejected
from nodes.brokers import open_broker
from schemas import catalog as t
from schemas.trading import (
    Attention,
    Halt,
    Halted,
    ListOrders,
    Order,
    OrderRef,
    Orders,
    PlaceOrder,
    Resume,
    SettleOrder,
)
from schemas.universe import Security, Universe, closes

from .clerk import Clerk
from .desk import Desk, Refusal
from .outbox import Outbox
from .settings import Settings

log = logging.getLogger(__name__)
node = Node("trading")
Ctx = Context[Desk]


@dataclass
class Publisher:
    """What the clerk learns, published: order events, alerts, the attention list."""

    ctx: Ctx

    async def order_changed(self, order: Order) -> None:
        log.info(
            "trading: order %s (%s %s %s) %s%s%s",
            order.client_order_id,
            order.side,
            order.quantity,
            order.symbol,
            order.status,
            f", {order.filled_quantity} filled at {order.average_price}" if order.filled_quantity else "",
            f": {order.note}" if order.note else "",
        )
        await self.ctx.publish(t.ORDER_UPDATED, order)

    async def alert(self, order: Order | None, text: str) -> None:
        await self.ctx.alert(t.ORDER_UPDATED, text)

    async def attention(self, attention: Attention) -> None:
        await self.ctx.publish(t.TRADING_ATTENTION, attention)


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[Desk]:
    """Open the broker (live without its switch or keys: refused, saying why) and the
    outbox, publish the halt flag, settle what a restart left open, and poll."""
    settings = Settings.from_env(os.environ)
    broker = open_broker(settings.account, ctx.state_dir)
    outbox = Outbox(ctx.state_dir / "trading.sqlite")
    clerk = Clerk(settings, outbox, broker, Publisher(ctx))
    desk = ctx.state = Desk(settings, outbox, clerk)
    await ctx.publish(t.TRADING_HALTED, desk.halted())
    await clerk.start()
    poller = asyncio.get_running_loop().create_task(clerk.poll_forever())
    yield desk
    poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poller
    clerk.close()
    outbox.close()
    close = getattr(broker, "close", None)
    if close:
        close()


def _by_symbol(universe: Universe) -> dict[str, Security]:
    return {s.symbol: s for s in universe.securities}


node.keep(t.UNIVERSE_SECURITIES, "securities", _by_symbol)
node.keep(t.UNIVERSE_QUOTES, "quotes", closes)
node.keep(t.UNIVERSE_CLOCK, "clock")


# -- orders -------------------------------------------------------------------------------------------
@node.command(t.TRADING_ORDER)
async def place(req: PlaceOrder, ctx: Ctx) -> Order:
    """The order's state within `TRADING_ANSWER_S`: the same client order id again is the
    same order, answered with its state and never sent twice."""
    try:
        return await ctx.state.place(req)
    except Refusal as exc:
        raise Rejected(str(exc)) from None


@node.command(t.TRADING_CANCEL)
async def cancel(req: OrderRef, ctx: Ctx) -> Order:
    try:
        return await ctx.state.cancel(req.client_order_id)
    except Refusal as exc:
        raise Rejected(str(exc)) from None


@node.command(t.TRADING_SETTLE)
async def settle(req: SettleOrder, ctx: Ctx) -> Order:
    try:
        return await ctx.state.settle(req)
    except Refusal as exc:
        raise Rejected(str(exc)) from None


@node.command(t.TRADING_GET)
async def get(req: OrderRef, ctx: Ctx) -> Order:
    try:
        return ctx.state.known(req.client_order_id)
    except Refusal as exc:
        raise Rejected(str(exc)) from None


@node.command(t.TRADING_ORDERS)
async def orders(req: ListOrders, ctx: Ctx) -> Orders:
    return Orders(orders=ctx.state.outbox.list(req.status, req.plan_id, req.limit))


@node.command(t.TRADING_HALT)
async def halt(req: Halt, ctx: Ctx) -> Halted:
    flag = ctx.state.set_halt(True, req.reason)
    await ctx.publish(t.TRADING_HALTED, flag)
    return flag


@node.command(t.TRADING_RESUME)
async def resume(req: Resume, ctx: Ctx) -> Halted:
    flag = ctx.state.set_halt(False, req.reason or "resumed")
    await ctx.publish(t.TRADING_HALTED, flag)
    return flag
