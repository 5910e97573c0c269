"""The trading desk: decides whether an order may go to the broker, and hands it to the clerk.
No MQTT (the node's handlers call it and turn a `Refusal` into an error reply), so the same
code runs in the node and in the stateful tests.

An order is answered, in this order: the same client order id again → its row, never sent
twice (a row written but never sent is sent, unless halted); research mode, the halt flag →
refused, nothing written; our limits, or an order of the same security whose fate is not
known → `denied`, written and never sent; otherwise written and sent (`clerk.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from nodes import clock as market
from nodes.brokers import BrokerError
from nodes.money.fx import FxError
from nodes.money.pairs import parse
from schemas.common import utcnow
from schemas.trading import FINISHED, Halted, Order, PlaceOrder, SettleOrder
from schemas.universe import MarketClock, Security

from .clerk import Clerk, NotSent
from .limits import Situation, check
from .outbox import Outbox
from .settings import Settings


class Refusal(Exception):
    """The request is refused and nothing was written or sent; the text says why."""


@dataclass
class Desk:
    """The node's state: its settings, outbox and clerk, and what it knows of the market."""

    settings: Settings
    outbox: Outbox
    clerk: Clerk
    securities: dict[str, Security] = field(default_factory=dict)  # the universe's, by symbol
    quotes: dict[str, Decimal] = field(default_factory=dict)  # the universe's latest closes
    clock: MarketClock | None = None  # the universe's market clock: the day whose turnover counts

    def halted(self) -> Halted:
        return self.outbox.halted() or Halted(halted=False, at=utcnow(), mode=self.settings.mode)  # type: ignore[arg-type]

    def set_halt(self, halted: bool, reason: str) -> Halted:
        flag = Halted(halted=halted, reason=reason, at=utcnow(), mode=self.settings.mode)  # type: ignore[arg-type]
        self.outbox.set_halted(flag)
        return flag

    def _refuse_if_halted(self) -> None:
        halted = self.halted()
        if halted.halted:
            raise Refusal(f"trading is halted since {halted.at:%Y-%m-%d %H:%M} UTC: {halted.reason}; nothing was sent")

    async def place(self, req: PlaceOrder) -> Order:
        existing = self.outbox.get(req.client_order_id)
        if existing is not None:
            first = self.outbox.request(req.client_order_id)
            if first is None or not first.same_order(req):
                raise Refusal(
                    f"client_order_id {req.client_order_id} names another order already "
                    f"({existing.side} {existing.quantity} {existing.symbol}); nothing was placed"
                )
            if existing.status == "new" and self.settings.mode != "research":
                return await self._send(existing)  # written, never sent: the caller asks again
            return existing
        if self.settings.mode == "research":
            raise Refusal("mode research: orders are never sent (set EDGE_MODE=paper or live)")
        self._refuse_if_halted()
        situation = await self._situation(req)
        reasons = check(req, situation, self.settings.limits)
        waiting = self.clerk.waiting(req.symbol)
        if waiting:
            ids = ", ".join(o.client_order_id for o in waiting)
            reasons.append(f"{req.symbol} has orders whose fate is not known yet ({ids}): settle them first")
        order = self.outbox.create(
            req,
            self.settings.mode,
            situation.quote or Decimal(0),
            situation.value_base,
            market_day=market.limit_day(self.clock),
        )
        if reasons:
            return await self.clerk.deny(order, reasons)
        return await self._send(order)

    async def _send(self, order: Order) -> Order:
        self._refuse_if_halted()
        try:
            return await self.clerk.send(order)
        except NotSent as exc:
            raise Refusal(f"order {order.client_order_id}: {exc}; nothing was sent, ask again to send it") from None

    async def _situation(self, req: PlaceOrder) -> Situation:
        """What the limits need, with the cash and shares this node's open orders hold counted
        as spent (a broker's "available funds" may or may not net them: counting them is safe)."""
        clerk = self.clerk
        try:  # the broker's own last price where it has one (live), else the universe's last close
            quote = await clerk.ask(clerk.broker.quote, req.symbol) or self.quotes.get(req.symbol)
            account = await clerk.ask(clerk.broker.account)
        except BrokerError as exc:
            raise Refusal(f"the broker cannot be asked ({exc}); nothing was sent") from exc
        price = req.limit_price if req.limit_price is not None else quote
        value = (price or Decimal(0)) * req.quantity
        fx = self.settings.fx.quoted(self.quotes)
        try:
            value_base = fx.to_base(value, req.currency)
            fee = self.settings.fees.fee(value, req.currency, fx, req.symbol)
        except FxError as exc:
            raise Refusal(str(exc)) from None
        held_cash, held_shares = clerk.reserved()
        position = account.positions.get(req.symbol)
        if (pair := parse(req.symbol)) is not None:  # what an exchange sells is the base currency's cash
            held = account.cash.get(pair.base, Decimal(0)) - held_cash.get(pair.base, Decimal(0))
        else:
            held = (position.quantity if position else Decimal(0)) - held_shares.get(req.symbol, Decimal(0))
        now = datetime.now(UTC)
        return Situation(
            security=self.securities.get(req.symbol),
            quote=quote,
            fee=fee,
            value_base=value_base,
            base=fx.base,
            turnover_today=self.outbox.turnover_on(market.limit_day(self.clock)),
            cash=account.cash.get(req.currency, Decimal(0)) - held_cash.get(req.currency, Decimal(0)),
            held=held,
            now=now,
        )

    def known(self, client_order_id: str) -> Order:
        order = self.outbox.get(client_order_id)
        if order is None:
            raise Refusal(f"no order {client_order_id}")
        return order

    async def cancel(self, client_order_id: str) -> Order:
        order = self.known(client_order_id)
        if order.status in FINISHED:
            return order
        try:
            return await self.clerk.cancel(order)
        except (NotSent, BrokerError) as exc:
            raise Refusal(f"cancel {client_order_id}: {exc}") from exc

    async def settle(self, req: SettleOrder) -> Order:
        """An operator's `resend` or `abandon` of an order left unknown; recorded with who."""
        order = self.known(req.client_order_id)
        if req.action == "resend":
            self._refuse_if_halted()
        try:
            return await self.clerk.settle(order, req)
        except NotSent as exc:
            raise Refusal(str(exc)) from None
