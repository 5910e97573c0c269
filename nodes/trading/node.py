"""The trading node's wiring: the only process that sends orders to a broker.

An order is checked against the limits (`limits.py`, counting what this node's open orders
already hold), written to the outbox (`outbox.py`) and taken to the broker by the clerk
(`clerk.py`), whose state machine (`lifecycle.py`) never sends an order twice: the same
client order id again (a redelivery, a plan approved twice, a caller's retry, a restart)
finds its row and is answered with its state. `trading/order` answers within
`TRADING_ANSWER_S`; every later change is published on `evt/trading/order`. Orders whose
fate is unknown are listed, retained, on `state/trading/attention` and reported on
`error/trading` until an operator settles them (`trading/settle`).

Configuration: `settings.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes.brokers import BrokerError, open_broker
from nodes.money.fx import FxError
from schemas import catalog as t
from schemas import topics
from schemas.common import utcnow
from schemas.runtime import ErrorReport
from schemas.trading import (
    FINISHED,
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

from .clerk import Clerk, NotSent
from .limits import Situation, check
from .outbox import Outbox
from .settings import Settings

log = logging.getLogger(__name__)
node = Node("trading")


@dataclass
class Desk:
    """The node's state: its settings, outbox and clerk, and what it knows of the market."""

    settings: Settings
    outbox: Outbox
    clerk: Clerk
    securities: dict[str, Security] = field(default_factory=dict)  # the universe's, by symbol
    quotes: dict[str, Decimal] = field(default_factory=dict)  # the universe's latest closes
    poller: asyncio.Task[None] | None = None

    def halted(self) -> Halted:
        return self.outbox.halted() or Halted(halted=False, at=utcnow(), mode=self.settings.mode)  # type: ignore[arg-type]


Ctx = Context[Desk]


@dataclass
class Publisher:
    """What the clerk learns, published: order events, alerts, the attention list."""

    ctx: Ctx

    async def order_changed(self, order: Order) -> None:
        await self.ctx.publish(t.ORDER_UPDATED, order)

    async def alert(self, order: Order | None, text: str) -> None:
        log.warning("trading: %s", text)
        report = ErrorReport(
            node=self.ctx.name,
            topic=self.ctx.client.topics.of(t.ORDER_UPDATED),
            kind="alert",
            reason=text[:2000],
            message_id=None,
            at=utcnow(),
        )
        await self.ctx.publish(topics.ERROR, report, node=self.ctx.name)

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
    desk.poller = asyncio.get_running_loop().create_task(clerk.poll_forever())
    yield desk
    desk.poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await desk.poller
    clerk.close()
    outbox.close()
    close = getattr(broker, "close", None)
    if close:
        close()


def _by_symbol(universe: Universe) -> dict[str, Security]:
    return {s.symbol: s for s in universe.securities}


node.keep(t.UNIVERSE_SECURITIES, "securities", _by_symbol)
node.keep(t.UNIVERSE_QUOTES, "quotes", closes)


# -- orders -------------------------------------------------------------------------------------------
async def _situation(desk: Desk, req: PlaceOrder) -> Situation:
    """What the limits need, with the cash and shares this node's open orders hold counted
    as spent (a broker's "available funds" may or may not net them: counting them is safe)."""
    clerk = desk.clerk
    try:  # the broker's own last price where it has one (live), else the universe's last close
        quote = await clerk.ask(clerk.broker.quote, req.symbol) or desk.quotes.get(req.symbol)
        account = await clerk.ask(clerk.broker.account)
    except BrokerError as exc:
        raise Rejected(f"the broker cannot be asked ({exc}); nothing was sent") from exc
    price = req.limit_price if req.limit_price is not None else quote
    value = (price or Decimal(0)) * req.quantity
    try:
        value_base = desk.settings.fx.to_base(value, req.currency)
        fee = desk.settings.fees.fee(value, req.currency, desk.settings.fx)
    except FxError as exc:
        raise Rejected(str(exc)) from None
    held_cash, held_shares = clerk.reserved()
    position = account.positions.get(req.symbol)
    now = datetime.now(UTC)
    return Situation(
        security=desk.securities.get(req.symbol),
        quote=quote,
        fee=fee,
        value_base=value_base,
        base=desk.settings.fx.base,
        turnover_today=desk.outbox.turnover_since(now.replace(hour=0, minute=0, second=0, microsecond=0)),
        cash=account.cash.get(req.currency, Decimal(0)) - held_cash.get(req.currency, Decimal(0)),
        held=(position.quantity if position else Decimal(0)) - held_shares.get(req.symbol, Decimal(0)),
        now=now,
    )


async def _send(ctx: Ctx, order: Order) -> Order:
    halted = ctx.state.halted()
    if halted.halted:
        raise Rejected(f"trading is halted since {halted.at:%Y-%m-%d %H:%M} UTC: {halted.reason}; nothing was sent")
    try:
        return await ctx.state.clerk.send(order)
    except NotSent as exc:
        raise Rejected(f"order {order.client_order_id}: {exc}; nothing was sent, ask again to send it") from None


@node.command(t.TRADING_ORDER)
async def place(req: PlaceOrder, ctx: Ctx) -> Order:
    """The order's state within `TRADING_ANSWER_S`: the same client order id again is the
    same order, answered with its state and never sent twice."""
    desk = ctx.state
    existing = desk.outbox.get(req.client_order_id)
    if existing is not None:
        first = desk.outbox.request(req.client_order_id)
        if first is None or not first.same_order(req):
            raise Rejected(
                f"client_order_id {req.client_order_id} names another order already "
                f"({existing.side} {existing.quantity} {existing.symbol}); nothing was placed"
            )
        if existing.status == "new" and desk.settings.mode != "research":
            return await _send(ctx, existing)  # written, never sent: the caller asks again
        return existing
    if desk.settings.mode == "research":
        raise Rejected("mode research: orders are never sent (set EDGE_MODE=paper or live)")
    halted = desk.halted()
    if halted.halted:
        raise Rejected(f"trading is halted since {halted.at:%Y-%m-%d %H:%M} UTC: {halted.reason}; nothing was placed")
    situation = await _situation(desk, req)
    reasons = check(req, situation, desk.settings.limits)
    waiting = desk.clerk.waiting(req.symbol)
    if waiting:
        ids = ", ".join(o.client_order_id for o in waiting)
        reasons.append(f"{req.symbol} has orders whose fate is not known yet ({ids}): settle them first")
    order = desk.outbox.create(req, desk.settings.mode, situation.quote or Decimal(0), situation.value_base)
    if reasons:
        return await desk.clerk.deny(order, reasons)
    return await _send(ctx, order)


@node.command(t.TRADING_CANCEL)
async def cancel(req: OrderRef, ctx: Ctx) -> Order:
    order = _known(ctx, req.client_order_id)
    if order.status in FINISHED:
        return order
    try:
        return await ctx.state.clerk.cancel(order)
    except (NotSent, BrokerError) as exc:
        raise Rejected(f"cancel {req.client_order_id}: {exc}") from exc


@node.command(t.TRADING_SETTLE)
async def settle(req: SettleOrder, ctx: Ctx) -> Order:
    """An operator's `resend` or `abandon` of an order left unknown; recorded with who."""
    order = _known(ctx, req.client_order_id)
    if req.action == "resend":
        halted = ctx.state.halted()
        if halted.halted:
            raise Rejected(f"trading is halted since {halted.at:%Y-%m-%d %H:%M} UTC: {halted.reason}; nothing was sent")
    try:
        return await ctx.state.clerk.settle(order, req)
    except NotSent as exc:
        raise Rejected(str(exc)) from None


def _known(ctx: Ctx, client_order_id: str) -> Order:
    order = ctx.state.outbox.get(client_order_id)
    if order is None:
        raise Rejected(f"no order {client_order_id}")
    return order


@node.command(t.TRADING_GET)
async def get(req: OrderRef, ctx: Ctx) -> Order:
    return _known(ctx, req.client_order_id)


@node.command(t.TRADING_ORDERS)
async def orders(req: ListOrders, ctx: Ctx) -> Orders:
    return Orders(orders=ctx.state.outbox.list(req.status, req.plan_id, req.limit))


async def _set_halt(ctx: Ctx, halted: bool, reason: str) -> Halted:
    desk = ctx.state
    flag = Halted(halted=halted, reason=reason, at=utcnow(), mode=desk.settings.mode)  # type: ignore[arg-type]
    desk.outbox.set_halted(flag)
    await ctx.publish(t.TRADING_HALTED, flag)
    return flag


@node.command(t.TRADING_HALT)
async def halt(req: Halt, ctx: Ctx) -> Halted:
    return await _set_halt(ctx, True, req.reason)


@node.command(t.TRADING_RESUME)
async def resume(req: Resume, ctx: Ctx) -> Halted:
    return await _set_halt(ctx, False, req.reason or "resumed")
