"""The trading node's wiring: the only process that sends orders to a broker.

An order is checked against the limits (`limits.py`), written to the outbox
(`outbox.py`) with its number, and only then sent; the broker's answer is written back
and published (`evt/trading/order`). The same client order id again (a QoS 1
redelivery, a plan approved twice, a caller's retry) finds the outbox row and never
makes a second order; a row that was written but never answered (the node was killed in
between) is matched with the broker by its number before it is sent, so it reaches the
broker once. On start, unfinished orders are reconciled before anything new is sent.

Configuration: `settings.py`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes.brokers import BrokerError, open_broker
from nodes.brokers.base import Broker, BrokerOrder, OrderSpec
from nodes.money.fx import FxError
from schemas import catalog as t
from schemas.common import utcnow
from schemas.trading import FINISHED, Halt, Halted, ListOrders, Order, OrderRef, Orders, PlaceOrder, Resume
from schemas.universe import Security, Universe, closes

from .limits import Situation, check
from .outbox import Outbox
from .settings import Settings

log = logging.getLogger(__name__)
node = Node("trading")


@dataclass
class Desk:
    """The node's state: its settings, outbox and broker, and what it knows of the market."""

    settings: Settings
    outbox: Outbox
    broker: Broker
    securities: dict[str, Security] = field(default_factory=dict)  # the universe's, by symbol
    quotes: dict[str, Decimal] = field(default_factory=dict)  # the universe's latest closes
    reconciled: bool = False

    def halted(self) -> Halted:
        return self.outbox.halted() or Halted(halted=False, at=utcnow(), mode=self.settings.mode)  # type: ignore[arg-type]


Ctx = Context[Desk]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[Desk]:
    """Open the broker (live without its switch or keys: refused, saying why) and the
    outbox, publish the halt flag and reconcile unfinished orders. A failed reconcile is
    logged: nothing is sent until one succeeds (`_ensure_reconciled`)."""
    settings = Settings.from_env(os.environ)
    broker = open_broker(settings.account, ctx.state_dir)
    outbox = Outbox(ctx.state_dir / "trading.sqlite")
    desk = ctx.state = Desk(settings, outbox, broker)
    try:
        await ctx.publish(t.TRADING_HALTED, desk.halted())
        await reconcile(ctx)
    except Exception:
        log.exception("trading: the start-up publish or reconcile failed")
    yield desk
    outbox.close()
    close = getattr(broker, "close", None)
    if close:
        close()


def _by_symbol(universe: Universe) -> dict[str, Security]:
    return {s.symbol: s for s in universe.securities}


node.keep(t.UNIVERSE_SECURITIES, "securities", _by_symbol)
node.keep(t.UNIVERSE_QUOTES, "quotes", closes)


# -- sending ----------------------------------------------------------------------------------------
def _spec(order: Order) -> OrderSpec:
    return OrderSpec(
        ref=order.ref,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        currency=order.currency,
        limit_price=order.limit_price,
        quote=order.reference_price,
    )


async def _record(ctx: Ctx, order: Order, answer: BrokerOrder) -> Order:
    updated = ctx.state.outbox.update(
        order.ref,
        answer.status,
        note=answer.note,
        broker_order_id=answer.broker_order_id,
        filled=answer.filled_quantity,
        average_price=answer.average_price,
        fee=answer.fee,
    )
    await ctx.publish(t.ORDER_UPDATED, updated)
    return updated


async def _send(ctx: Ctx, order: Order, *, resumed: bool) -> Order:
    """Send an order in status `new`. A resumed one (written earlier, its answer never
    recorded) is first looked up at the broker by its number: it may have arrived."""
    desk = ctx.state
    try:
        answer = desk.broker.find(order.ref) if resumed else None
        if answer is None:
            halted = desk.halted()
            if halted.halted:
                return order  # stays new; sent when resumed and asked again
            answer = desk.broker.place(_spec(order))
    except BrokerError as exc:
        # The broker's answer is unknown: the order stays `new` and is matched by its
        # number on the next try, so it can never be placed twice.
        note = f"sending failed ({exc}); it will be matched with the broker before any resend"
        order = desk.outbox.update(order.ref, "new", note=note)
        await ctx.publish(t.ORDER_UPDATED, order)
        raise Rejected(f"order {order.client_order_id}: {note}") from exc
    return await _record(ctx, order, answer)


async def reconcile(ctx: Ctx) -> None:
    """Match every unfinished order with the broker; send those that never reached it,
    unless too old. Nothing new is sent before this has succeeded once."""
    desk = ctx.state
    for order in desk.outbox.unfinished():
        found = desk.broker.find(order.ref)
        if found is not None:
            if found.status != order.status or found.filled_quantity != order.filled_quantity:
                await _record(ctx, order, found)
        elif order.status == "new":
            if utcnow() - order.created > desk.settings.stale_after:
                await ctx.publish(
                    t.ORDER_UPDATED,
                    desk.outbox.update(
                        order.ref, "cancelled", note="written but never sent before a restart, and too old to send now"
                    ),
                )
            elif desk.settings.mode != "research":
                await _send(ctx, order, resumed=False)
        else:
            await ctx.publish(
                t.ORDER_UPDATED,
                desk.outbox.update(order.ref, order.status, note=f"the broker does not know this {order.status} order"),
            )
    desk.reconciled = True


async def _ensure_reconciled(ctx: Ctx) -> None:
    if ctx.state.reconciled:
        return
    try:
        await reconcile(ctx)
    except BrokerError as exc:
        raise Rejected(f"the broker cannot be reached to reconcile earlier orders ({exc}); nothing was sent") from exc


def _situation(desk: Desk, req: PlaceOrder) -> Situation:
    try:  # the broker's own last price where it has one (live), else the universe's last close
        quote = desk.broker.quote(req.symbol) or desk.quotes.get(req.symbol)
    except BrokerError as exc:
        raise Rejected(f"no price for {req.symbol} from the broker ({exc}); nothing was sent") from exc
    price = req.limit_price if req.limit_price is not None else quote
    value = (price or Decimal(0)) * req.quantity
    try:
        value_base = desk.settings.fx.to_base(value, req.currency)
        fee = desk.settings.fees.fee(value, req.currency, desk.settings.fx)
    except FxError as exc:
        raise Rejected(str(exc)) from None
    try:
        account = desk.broker.account()
    except BrokerError as exc:
        raise Rejected(f"the broker's account cannot be read ({exc}); nothing was sent") from exc
    held = account.positions.get(req.symbol)
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Situation(
        security=desk.securities.get(req.symbol),
        quote=quote,
        fee=fee,
        value_base=value_base,
        base=desk.settings.fx.base,
        turnover_today=desk.outbox.turnover_since(day),
        cash=account.cash.get(req.currency, Decimal(0)),
        held=held.quantity if held else Decimal(0),
        now=now,
    )


@node.command(t.TRADING_ORDER)
async def place(req: PlaceOrder, ctx: Ctx) -> Order:
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
            await _ensure_reconciled(ctx)
            existing = desk.outbox.get(req.client_order_id) or existing
            if existing.status == "new":
                return await _send(ctx, existing, resumed=True)
        return existing
    if desk.settings.mode == "research":
        raise Rejected("mode research: orders are never sent (set EDGE_MODE=paper or live)")
    halted = desk.halted()
    if halted.halted:
        raise Rejected(f"trading is halted since {halted.at:%Y-%m-%d %H:%M} UTC: {halted.reason}; nothing was placed")
    await _ensure_reconciled(ctx)
    situation = _situation(desk, req)
    reasons = check(req, situation, desk.settings.limits)
    if reasons:
        raise Rejected("; ".join(reasons))
    order = desk.outbox.create(req, desk.settings.mode, situation.quote or Decimal(0), situation.value_base)
    # No event for `new`: the broker's answer follows at once, and its event (with every
    # step, `new` included) is the one that matters; one broker round trip less per order.
    return await _send(ctx, order, resumed=False)


@node.command(t.TRADING_CANCEL)
async def cancel(req: OrderRef, ctx: Ctx) -> Order:
    desk = ctx.state
    order = desk.outbox.get(req.client_order_id)
    if order is None:
        raise Rejected(f"no order {req.client_order_id}")
    if order.status in FINISHED:
        return order
    try:
        found = desk.broker.find(order.ref)
        if found is None:
            updated = desk.outbox.update(order.ref, "cancelled", note="cancelled before it reached the broker")
            await ctx.publish(t.ORDER_UPDATED, updated)
            return updated
        return await _record(ctx, order, desk.broker.cancel(order.ref))
    except BrokerError as exc:
        raise Rejected(f"cancel {req.client_order_id}: {exc}") from exc


@node.command(t.TRADING_GET)
async def get(req: OrderRef, ctx: Ctx) -> Order:
    order = ctx.state.outbox.get(req.client_order_id)
    if order is None:
        raise Rejected(f"no order {req.client_order_id}")
    return order


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
