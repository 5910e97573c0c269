"""The trading node's wiring: the only process that sends orders to a broker.

An order is checked against the limits (`limits.py`), written to the outbox
(`outbox.py`) with its number, and only then sent; the broker's answer is written back
and published (`evt/trading/order`). The same client order id again (a QoS 1
redelivery, a plan approved twice, a caller's retry) finds the outbox row and never
makes a second order; a row that was written but never answered (the node was killed in
between) is matched with the broker by its number before it is sent, so it reaches the
broker once. On start, unfinished orders are reconciled before anything new is sent.

Configuration (environment), besides the limits, fees (`nodes/money/fees.py`), FX
rates (`nodes/money/fx.py`) and the broker's settings (`nodes/brokers/__init__.py`):

| variable                | default   | meaning                                                        |
| ----------------------- | --------- | -------------------------------------------------------------- |
| `EDGE_MODE`             | `paper`   | `research` (never sends), `paper`, `live` (Tradernet); the     |
|                         |           | whole system's mode (`edge up --mode`, Ansible's `edge_mode`)  |
| `TRADING_ALLOW_LIVE`    |           | must be `yes` for `live`: the explicit switch                  |
| `TRADING_STALE_ORDER_S` | `3600`    | an order written but never sent, older than this at a restart, |
|                         |           | is cancelled instead of sent (its price is stale)             |
| `TRADING_MARKET_HOURS`  | `always` in paper, `exchange` in live | see `limits.py`                    |
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes.brokers import BrokerError, open_broker
from nodes.brokers.base import Broker, BrokerOrder, OrderSpec
from nodes.money.fees import FeeSchedule
from nodes.money.fx import FxError, Rates
from schemas import catalog as t
from schemas.common import utcnow
from schemas.trading import FINISHED, Halt, Halted, ListOrders, Order, OrderRef, Orders, PlaceOrder, Resume
from schemas.universe import Quotes, Security, Universe, closes

from .limits import Limits, Situation, check
from .outbox import Outbox

node = Node("trading")


class Desk:
    """The node's state: its outbox, its broker and what it knows of the market."""

    def __init__(self, mode: str, outbox: Outbox, broker: Broker, limits: Limits, fees: FeeSchedule, fx: Rates,
                 stale_after: timedelta) -> None:
        self.mode, self.outbox, self.broker = mode, outbox, broker
        self.limits, self.fees, self.fx, self.stale_after = limits, fees, fx, stale_after
        self.securities: dict[str, Security] = {}
        self.quotes: dict[str, Decimal] = {}
        self.reconciled = False

    def halted(self) -> Halted:
        return self.outbox.halted() or Halted(halted=False, at=utcnow(), mode=self.mode)  # type: ignore[arg-type]


def _desk(ctx: Context) -> Desk:
    return ctx.state["desk"]


@node.lifespan
async def open_desk(ctx: Context) -> AsyncIterator[None]:
    env = os.environ
    mode = env.get("EDGE_MODE", "paper")
    if mode not in ("research", "paper", "live"):
        raise ValueError(f"EDGE_MODE={mode!r}: use research, paper or live")
    broker = open_broker(mode, ctx.state_dir, env)  # live without its switch or keys: refuses, says why
    outbox = Outbox(ctx.state_dir / "trading.sqlite")
    ctx.state["desk"] = Desk(mode, outbox, broker, Limits.from_env(env, market_hours="exchange" if mode == "live"
                                                                    else "always"),
                             FeeSchedule.from_env(env), Rates.from_env(env),
                             timedelta(seconds=float(env.get("TRADING_STALE_ORDER_S", "3600"))))
    yield
    outbox.close()
    close = getattr(broker, "close", None)
    if close:
        close()


@node.startup
async def start(ctx: Context) -> None:
    desk = _desk(ctx)
    await ctx.publish(t.TRADING_HALTED, desk.halted())
    await reconcile(ctx)


@node.on(t.UNIVERSE_SECURITIES)
async def on_securities(universe: Universe, ctx: Context) -> None:
    _desk(ctx).securities = {s.symbol: s for s in universe.securities}


@node.on(t.UNIVERSE_QUOTES)
async def on_quotes(quotes: Quotes, ctx: Context) -> None:
    _desk(ctx).quotes = closes(quotes)


# -- sending ----------------------------------------------------------------------------------------
def _spec(order: Order) -> OrderSpec:
    return OrderSpec(ref=order.ref, client_order_id=order.client_order_id, symbol=order.symbol, side=order.side,
                     quantity=order.quantity, currency=order.currency, limit_price=order.limit_price,
                     quote=order.reference_price)


async def _record(ctx: Context, order: Order, answer: BrokerOrder) -> Order:
    updated = _desk(ctx).outbox.update(order.ref, answer.status, note=answer.note,
                                       broker_order_id=answer.broker_order_id, filled=answer.filled_quantity,
                                       average_price=answer.average_price, fee=answer.fee)
    await ctx.publish(t.ORDER_UPDATED, updated)
    return updated


async def _send(ctx: Context, order: Order, *, resumed: bool) -> Order:
    """Send an order in status `new`. A resumed one (written earlier, its answer never
    recorded) is first looked up at the broker by its number: it may have arrived."""
    desk = _desk(ctx)
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


async def reconcile(ctx: Context) -> None:
    """Match every unfinished order with the broker; send those that never reached it,
    unless too old. Nothing new is sent before this has succeeded once."""
    desk = _desk(ctx)
    for order in desk.outbox.unfinished():
        found = desk.broker.find(order.ref)
        if found is not None:
            if found.status != order.status or found.filled_quantity != order.filled_quantity:
                await _record(ctx, order, found)
        elif order.status == "new":
            if utcnow() - order.created > desk.stale_after:
                await ctx.publish(t.ORDER_UPDATED, desk.outbox.update(
                    order.ref, "cancelled", note="written but never sent before a restart, and too old to send now"))
            elif desk.mode != "research":
                await _send(ctx, order, resumed=False)
        else:
            await ctx.publish(t.ORDER_UPDATED, desk.outbox.update(
                order.ref, order.status, note=f"the broker does not know this {order.status} order"))
    desk.reconciled = True


async def _ensure_reconciled(ctx: Context) -> None:
    if _desk(ctx).reconciled:
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
        value_base = desk.fx.to_base(value, req.currency)
        fee = desk.fees.fee(value, req.currency, desk.fx)
    except FxError as exc:
        raise Rejected(str(exc)) from None
    try:
        account = desk.broker.account()
    except BrokerError as exc:
        raise Rejected(f"the broker's account cannot be read ({exc}); nothing was sent") from exc
    held = account.positions.get(req.symbol)
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Situation(security=desk.securities.get(req.symbol), quote=quote, fee=fee, value_base=value_base,
                     base=desk.fx.base, turnover_today=desk.outbox.turnover_since(day),
                     cash=account.cash.get(req.currency, Decimal(0)), held=held.quantity if held else Decimal(0),
                     now=now)


@node.command(t.TRADING_ORDER)
async def place(req: PlaceOrder, ctx: Context) -> Order:
    desk = _desk(ctx)
    existing = desk.outbox.get(req.client_order_id)
    if existing is not None:
        first = desk.outbox.request(req.client_order_id)
        if first is None or not first.same_order(req):
            raise Rejected(f"client_order_id {req.client_order_id} names another order already "
                           f"({existing.side} {existing.quantity} {existing.symbol}); nothing was placed")
        if existing.status == "new" and desk.mode != "research":
            await _ensure_reconciled(ctx)
            existing = desk.outbox.get(req.client_order_id) or existing
            if existing.status == "new":
                return await _send(ctx, existing, resumed=True)
        return existing
    if desk.mode == "research":
        raise Rejected("mode research: orders are never sent (set EDGE_MODE=paper or live)")
    halted = desk.halted()
    if halted.halted:
        raise Rejected(f"trading is halted since {halted.at:%Y-%m-%d %H:%M} UTC: {halted.reason}; nothing was placed")
    await _ensure_reconciled(ctx)
    situation = _situation(desk, req)
    reasons = check(req, situation, desk.limits)
    if reasons:
        raise Rejected("; ".join(reasons))
    order = desk.outbox.create(req, desk.mode, situation.quote or Decimal(0), situation.value_base)
    # No event for `new`: the broker's answer follows at once, and its event (with every
    # step, `new` included) is the one that matters; one broker round trip less per order.
    return await _send(ctx, order, resumed=False)


@node.command(t.TRADING_CANCEL)
async def cancel(req: OrderRef, ctx: Context) -> Order:
    desk = _desk(ctx)
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
async def get(req: OrderRef, ctx: Context) -> Order:
    order = _desk(ctx).outbox.get(req.client_order_id)
    if order is None:
        raise Rejected(f"no order {req.client_order_id}")
    return order


@node.command(t.TRADING_ORDERS)
async def orders(req: ListOrders, ctx: Context) -> Orders:
    return Orders(orders=_desk(ctx).outbox.list(req.status, req.plan_id, req.limit))


async def _set_halt(ctx: Context, halted: bool, reason: str) -> Halted:
    desk = _desk(ctx)
    flag = Halted(halted=halted, reason=reason, at=utcnow(), mode=desk.mode)  # type: ignore[arg-type]
    desk.outbox.set_halted(flag)
    await ctx.publish(t.TRADING_HALTED, flag)
    return flag


@node.command(t.TRADING_HALT)
async def halt(req: Halt, ctx: Context) -> Halted:
    return await _set_halt(ctx, True, req.reason)


@node.command(t.TRADING_RESUME)
async def resume(req: Resume, ctx: Context) -> Halted:
    return await _set_halt(ctx, False, req.reason or "resumed")
