"""The trading node's clerk: takes orders to the broker and keeps the outbox true to what the
broker did. No MQTT: what it learns goes to a `Reporter` (the node publishes it).

Safety first, then liveness, and every decision visible:
- An order is `sending`, under a broker id never used before, before the request leaves;
  from then on only the broker's evidence (its answer, its order lists) or an operator moves
  it. No answer (a timeout, a dropped connection, a crash) makes it `unknown`, never `new`.
- The caller gets an answer within `answer_s` with the order's state at that moment; the
  broker's answer is recorded and published when it comes.
- Open and unknown orders are polled (`poll_s`, doubling on errors); each is matched on its
  own (`matching.py`), so one that cannot be read never holds up another. An `unknown` order
  still not found after the settle window raises an alert and waits for `trading/settle`;
  new orders for its security are refused until then, others go on.
- Broker calls run one at a time on one thread: the SDK blocks, and one conversation with the
  broker at a time keeps its lists and our outbox in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from nodes.brokers.base import Broker, BrokerError, OrderSpec, Refused, Sighting
from nodes.money.fx import FxError
from nodes.money.pairs import parse
from schemas.trading import Attention, Order, SettleOrder

from .lifecycle import FINISHED, Cause, Event, InvalidTransition, State
from .matching import Mine, match
from .outbox import PER_PREFIX, Outbox
from .settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
LOOKBACK = timedelta(days=7)  # how far back the broker's history is read for our orders
FEE_RECHECK_S = 300.0
WAITING = frozenset({State.SENDING.value, State.UNKNOWN.value})  # fate not known: the security is blocked


class Reporter(Protocol):
    async def order_changed(self, order: Order) -> None: ...
    async def alert(self, order: Order | None, text: str) -> None: ...
    async def attention(self, attention: Attention) -> None: ...


class NotSent(Exception):
    """The order was not sent (and stays `new`): the message says why."""


def _now() -> datetime:
    return datetime.now(UTC)


def _looks(order: Order) -> tuple[object, ...]:
    """What readers of `evt/trading/order` act on: a change of any of it is published."""
    return (
        order.status,
        order.filled_quantity,
        order.average_price,
        order.broker_order_id,
        order.fee,
        order.fee_estimated,
    )


class Clerk:
    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        broker: Broker,
        reporter: Reporter,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.settings, self.outbox, self.broker, self.reporter, self.now = settings, outbox, broker, reporter, now
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="broker")
        self._in_flight: dict[int, asyncio.Task[Order]] = {}
        self._wake = asyncio.Event()
        self._problems: dict[int, str] = {}  # ref: what is wrong with it, reported once
        self._said: set[tuple[int, str]] = set()
        self._attention: Attention | None = None
        self._ids_checked = False
        self._unseen: dict[int, datetime] = {}  # ref: since when an accepted order is missing from the lists
        self._fees_due = 0.0  # monotonic time of the next look for the broker's commissions

    async def ask(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking broker call on the broker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- start --------------------------------------------------------------------------------------
    async def start(self) -> None:
        """After a restart: an order left `sending` may have reached the broker (`unknown`, to
        be looked for); one written but never sent is denied once its price is stale."""
        for order in self.outbox.in_states([State.SENDING.value]):
            note = "the node stopped while sending it: the broker may have it; looking for it in its lists"
            await self._apply(order.ref, Event(Cause.NO_ANSWER, self.now(), "trading", note))
        for order in self.outbox.in_states([State.NEW.value]):
            if self.now() - order.created > self.settings.stale_after:
                note = "written but never sent before a restart, and too old to send now"
                await self._apply(order.ref, Event(Cause.DENY, self.now(), "trading", note))
        await self._publish_attention()
        self.wake()

    async def check_ids(self) -> None:
        """Before the first order: if the broker lists orders under our id prefix that this
        outbox never made (an outbox reset, another installation drew the same prefix),
        draw another prefix. Raises BrokerError if the broker cannot be asked."""
        listed = await self.ask(self.broker.orders, self.now() - LOOKBACK)
        refs = {s.broker_ref for s in listed if s.broker_ref is not None}
        prefix = self.outbox.prefix()
        strangers = [r for r in refs if r // PER_PREFIX == prefix and not self.outbox.owns(r)]
        if strangers:
            new = self.outbox.renew_prefix({r // PER_PREFIX for r in refs})
            log.warning("trading: the broker has orders %s under id prefix %s; now using %s", strangers, prefix, new)
        self._ids_checked = True

    # -- sending ------------------------------------------------------------------------------------
    def waiting(self, symbol: str) -> list[Order]:
        """This security's orders whose fate is not known: new orders for it wait for them."""
        return [o for o in self.outbox.in_states(WAITING) if o.symbol == symbol]

    async def deny(self, order: Order, reasons: list[str]) -> Order:
        return await self._apply(order.ref, Event(Cause.DENY, self.now(), "limits", "; ".join(reasons)[:2000]))

    async def send(self, order: Order, *, by: str = "trading", cause: Cause = Cause.SEND) -> Order:
        """Send a `new` order (or resend an `unknown` one, `cause=RESEND`) under a fresh
        broker id, checked against the broker's orders of the day. `NotSent` if that check
        cannot be made (the order is unchanged); otherwise the order's state after at most
        `answer_s` (`sending` if the broker has not answered yet)."""
        try:
            if not self._ids_checked:
                await self.check_ids()
            listed = await self.ask(self.broker.orders, self.now() - timedelta(days=1))
        except BrokerError as exc:
            raise NotSent(f"the broker's orders of the day cannot be read to check the id ({exc})") from exc
        taken = {s.broker_ref for s in listed if s.broker_ref is not None}
        broker_ref = self.outbox.next_broker_ref(skip=taken)
        self.outbox.assign_broker_ref(order.ref, broker_ref)
        note = f"sending as {broker_ref}" + (f" ({by}'s decision)" if cause is Cause.RESEND else "")
        order = await self._apply(order.ref, Event(cause, self.now(), by, note))
        spec = OrderSpec(
            broker_ref=broker_ref,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            currency=order.currency,
            limit_price=order.limit_price,
            quote=order.reference_price,
        )
        task = asyncio.get_running_loop().create_task(self._deliver(order.ref, spec))
        self._in_flight[order.ref] = task
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.settings.answer_s)
        except TimeoutError:
            return self.outbox.get(order.client_order_id) or order

    async def _deliver(self, ref: int, spec: OrderSpec) -> Order:
        try:
            try:
                answer = await self.ask(self.broker.place, spec)
            except Refused as exc:
                return await self._apply(ref, Event(Cause.REJECT, self.now(), "broker", str(exc)[:2000]))
            except Exception as exc:  # a timeout, a drop, a 5xx, an answer that cannot be read: doubt
                note = f"no definite answer ({str(exc)[:300]}): the broker may have it; looking for it in its lists"
                order = await self._apply(ref, Event(Cause.NO_ANSWER, self.now(), "trading", note))
                self.wake()
                return order
            order = await self._adopt(ref, answer, "broker")
            if order.status in ("accepted", "partially_filled"):
                self.wake()  # a market order may have filled already: look soon
            return order
        finally:
            self._in_flight.pop(ref, None)
            await self._publish_attention()

    # -- evidence -----------------------------------------------------------------------------------
    async def _apply(self, ref: int, event: Event, **evidence: Any) -> Order:
        before = self.outbox.by_ref(ref)
        return await self._announce(before, self.outbox.apply(ref, event, **evidence))

    async def _announce(self, before: Order, after: Order) -> Order:
        """Publish the order if anything a reader acts on changed."""
        if _looks(after) != _looks(before):
            await self.reporter.order_changed(after)
        return after

    async def _adopt(self, ref: int, seen: Sighting, by: str) -> Order:
        """Take the broker's word on order `ref`: its id, state and fills."""
        order = self.outbox.by_ref(ref)
        cause = Cause(seen.evidence) if seen.evidence is not None else None
        if cause is None:  # a status we do not know: the broker has it, and it stays open
            self._tell_once(order, f"Tradernet status {seen.status} is not known here: the order is kept open")
            cause = Cause.ACCEPT if order.status in WAITING else None
        if cause is Cause.ACCEPT and seen.filled > 0:
            cause = Cause.PART_FILL
        if cause is Cause.PART_FILL and seen.filled <= 0:
            cause = Cause.ACCEPT
        if cause is Cause.REJECT and seen.filled > 0:
            cause = Cause.CANCEL  # a part filled: it is not a rejection
        if cause is None:
            return order
        note = seen.note or f"the broker says {seen.status}"
        event = Event(cause, self.now(), by, note[:2000], seen.filled, seen.average_price)
        try:
            after = self.outbox.apply(ref, event, broker_order_id=seen.broker_order_id, trade_ids=seen.trade_ids)
        except InvalidTransition as exc:
            self._tell_once(order, f"the broker's report does not fit the order's life: {exc}")
            return order
        if after.filled_quantity > 0:  # the fee goes out with the fill, in one event
            after = self._fee(after, seen.fee, refilled=after.filled_quantity != order.filled_quantity)
            if after.fee_estimated:
                self._fees_due = 0.0  # look for the broker's figure at the next poll
        return await self._announce(order, after)

    def _fee(self, order: Order, fee: Decimal | None, *, refilled: bool = False) -> Order:
        """The broker's fee where it gave one, else (for new fills) the schedule's figure for
        everything filled, marked as an estimate until the broker's commissions for all the
        executions appear (`_broker_fees`)."""
        if fee is not None:
            return self.outbox.set_fee(order.ref, fee, estimated=False)
        if refilled or order.fee == 0:
            value = order.filled_quantity * (order.average_price or order.reference_price)
            try:
                estimate = self.settings.fees.fee(value, order.currency, self.settings.fx, order.symbol)
            except FxError:
                estimate = Decimal(0)
            return self.outbox.set_fee(order.ref, estimate, estimated=True)
        return order

    # -- polling ------------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    async def poll_forever(self) -> None:
        """Poll while any order is open, every `poll_s`, doubling the pause on errors up to
        `poll_max_s`; a failure is logged and never ends the loop."""
        pause = self.settings.poll_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()
            try:
                await self.poll()
                pause = self.settings.poll_s
            except BrokerError as exc:
                pause = min(pause * 2, self.settings.poll_max_s)
                log.warning("trading: the broker's orders cannot be read (%s); next try in %.0f s", exc, pause)
            except Exception:
                pause = min(pause * 2, self.settings.poll_max_s)
                log.exception("trading: polling failed; next try in %.0f s", pause)

    async def poll(self) -> None:
        """Look up every open order at the broker, each on its own."""
        now = self.now()
        open_orders = [o for o in self.outbox.open() if o.ref not in self._in_flight]
        fee_due = self.outbox.estimated_fees(now - timedelta(days=self.settings.fee_days))
        if not open_orders and (not fee_due or time.monotonic() < self._fees_due):
            return
        sent = [self.outbox.sent_at(o.ref) or o.created for o in open_orders]
        since = min([*sent, now]) - timedelta(days=1)
        listed = await self.ask(self.broker.orders, since)
        claimed = self.outbox.claimed()
        for order, sent_at in zip(open_orders, sent, strict=True):
            try:
                await self._settle_one(order, sent_at, listed, claimed)
            except Exception as exc:  # one order that cannot be settled never holds up another
                self._tell_once(order, f"cannot be matched with the broker: {exc}")
                log.exception("trading: order %s", order.client_order_id)
        self._watch_earlier_attempts(listed)
        await self._broker_fees(now - timedelta(days=self.settings.fee_days))
        await self._publish_attention()

    async def _settle_one(self, order: Order, sent_at: datetime, listed: list[Sighting], claimed: set[str]) -> None:
        mine = Mine(order.broker_ref, order.broker_order_id, order.symbol, order.side, order.quantity, sent_at)
        found = match(mine, listed, claimed - {order.broker_order_id or ""}, self.settings.settle_after)
        if found.problem:
            self._tell_once(order, found.problem)
        if found.sighting is not None:
            self._problems.pop(order.ref, None)
            self._unseen.pop(order.ref, None)
            await self._adopt(order.ref, found.sighting, "poll")
            return
        if order.status not in WAITING:  # the broker had it: say so if its lists lose it for long
            missing = self._unseen.setdefault(order.ref, self.now())
            if self.now() - missing > self.settings.settle_after:
                self._tell_once(order, f"the broker's lists have not shown it since {missing:%Y-%m-%d %H:%M} UTC")
        overdue = order.status == State.UNKNOWN.value and self.now() - sent_at > self.settings.settle_after
        if overdue and not self.outbox.alerted(order.ref):
            self.outbox.mark_alerted(order.ref)
            await self.reporter.alert(
                order,
                f"order {order.client_order_id} ({order.side} {order.quantity} {order.symbol}, broker id "
                f"{order.broker_ref}) was sent {sent_at:%Y-%m-%d %H:%M:%S} UTC without a definite answer and the "
                f"broker does not list it after {self.settings.settle_after.total_seconds():.0f} s. New orders "
                f"for {order.symbol} wait. Settle it: trading/settle with action resend or abandon.",
            )

    def _watch_earlier_attempts(self, listed: list[Sighting]) -> None:
        """An order an operator resent or abandoned may still show up under an id it was sent
        with: the account then differs from the outbox, and an operator must know at once."""
        for cid, symbol, ids in self.outbox.watched():
            for s in listed:
                if s.broker_ref in ids and s.symbol == symbol:
                    order = self.outbox.get(cid)
                    if order is not None:
                        self._tell_once(
                            order,
                            f"it was sent as broker id {s.broker_ref}, which the broker now lists as order "
                            f"{s.broker_order_id} ({s.status}, {s.filled} filled) although it was "
                            f"{'abandoned' if order.status == 'abandoned' else 'sent again'}: check the account",
                        )

    async def _broker_fees(self, since: datetime) -> None:
        """Replace estimated fees by the broker's commissions once it lists them: right after a
        fill, then every `FEE_RECHECK_S` (cash flows may be posted hours later)."""
        orders = self.outbox.estimated_fees(since)
        if not orders or time.monotonic() < self._fees_due:
            return
        self._fees_due = time.monotonic() + FEE_RECHECK_S
        charged = await self.ask(self.broker.commissions, since - timedelta(days=1))
        for order in orders:
            trades = self.outbox.trade_ids(order.ref)
            if trades and all(t in charged for t in trades):
                await self._announce(order, self._fee(order, sum((charged[t] for t in trades), Decimal(0))))

    # -- operators ----------------------------------------------------------------------------------
    async def cancel(self, order: Order) -> Order:
        if order.status == State.NEW.value:
            return await self._apply(
                order.ref, Event(Cause.DENY, self.now(), "operator", "cancelled before it was sent")
            )
        if order.status in WAITING or order.broker_order_id is None:
            raise NotSent(
                f"order {order.client_order_id} is {order.status}: its broker order is not known yet, so it cannot "
                "be cancelled (settle it first)"
            )
        await self.ask(self.broker.cancel, order.broker_order_id)
        self.wake()
        return order

    async def settle(self, order: Order, req: SettleOrder) -> Order:
        """An operator's decision on an `unknown` order, once the settle window has passed."""
        if order.status != State.UNKNOWN.value:
            raise NotSent(f"order {order.client_order_id} is {order.status}: only an unknown order is settled")
        sent_at = self.outbox.sent_at(order.ref) or order.created
        ready = sent_at + self.settings.settle_after
        if self.now() < ready:
            raise NotSent(
                f"order {order.client_order_id}: wait until {ready:%H:%M:%S} UTC, the broker may still list it"
            )
        try:  # one more look first: the broker may list it by now
            await self.poll()
        except BrokerError as exc:
            raise NotSent(f"the broker's orders cannot be read to check it once more ({exc})") from exc
        order = self.outbox.by_ref(order.ref)
        if order.status != State.UNKNOWN.value:
            raise NotSent(
                f"order {order.client_order_id} is at the broker after all (order {order.broker_order_id}, "
                f"{order.status}): nothing to settle"
            )
        note = f"{req.action} by {req.by}" + (f": {req.reason}" if req.reason else "")
        if req.action == "abandon":
            order = await self._apply(order.ref, Event(Cause.ABANDON, self.now(), req.by, note))
            await self._publish_attention()
            return order
        return await self.send(order, by=req.by, cause=Cause.RESEND)

    # -- what an operator sees ----------------------------------------------------------------------
    def _tell_once(self, order: Order, text: str) -> None:
        self._problems[order.ref] = text
        if (order.ref, text) in self._said:
            return
        self._said.add((order.ref, text))
        log.warning("trading: order %s: %s", order.client_order_id, text)
        task = asyncio.get_running_loop().create_task(
            self.reporter.alert(order, f"order {order.client_order_id}: {text}")
        )
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _publish_attention(self) -> None:
        waiting = self.outbox.in_states(WAITING)
        alerted = [o for o in waiting if self.outbox.alerted(o.ref)]
        for ref in [r for r in self._problems if self.outbox.by_ref(r).status in FINISHED]:
            del self._problems[ref]  # its end is known: nothing left to look at
        troubled = [self.outbox.by_ref(ref) for ref in self._problems]
        orders = {o.ref: o for o in [*alerted, *troubled]}
        attention = Attention(
            orders=[orders[r] for r in sorted(orders)],
            blocked_symbols=sorted({o.symbol for o in waiting}),
            at=self.now(),
        )
        last = self._attention
        if last is None or (
            [(o.client_order_id, o.status) for o in last.orders],
            last.blocked_symbols,
        ) != ([(o.client_order_id, o.status) for o in attention.orders], attention.blocked_symbols):
            self._attention = attention
            await self.reporter.attention(attention)

    def reserved(self) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """Cash (per currency, with fees) and shares (per security) this node's open orders may
        still use: the pre-checks count them as spent. An open sale of a currency pair holds
        its base currency's cash (what it exchanges)."""
        cash: dict[str, Decimal] = {}
        shares: dict[str, Decimal] = {}
        for o in self.outbox.open():
            left = o.quantity - o.filled_quantity
            if left <= 0:
                continue
            if o.side == "buy":
                value = left * (o.limit_price or o.reference_price)
                fee = self.settings.fees.fee(value, o.currency, self.settings.fx, o.symbol)
                cash[o.currency] = cash.get(o.currency, Decimal(0)) + value + fee
            elif (pair := parse(o.symbol)) is not None:
                cash[pair.base] = cash.get(pair.base, Decimal(0)) + left
            else:
                shares[o.symbol] = shares.get(o.symbol, Decimal(0)) + left
        return cash, shares
