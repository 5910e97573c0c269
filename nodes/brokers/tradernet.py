"""The Tradernet account through tradernet-sdk: orders, their status, positions and cash.

Read strictly, after Tradernet's API documentation (docs/tradernet-api.md: what it says,
what it leaves open, and the traps of SDK 2.2.0); nothing is guessed:
- An order goes out once, as a cash order (`use_margin=False`: the SDK defaults to margin),
  a day order, with the outbox's broker id as `user_order_id`. Tradernet's own refusal
  (`errMsg`/`error`) is `Refused`; anything else short of an `order_id` is `NoAnswer`.
- Orders are read from today's list (getNotifyOrderJson) and the history (getOrdersHistory),
  in whatever shape they come: `result.orders.order` or `orders.order`, a list or one
  object; the id as `id` or `order_id`; our id as `user_order_id` or `userOrderId`, a
  number, a string or `"apiv2:<n>"` (absent or "0": the list lacks it; anything else is
  another client's id); executions under `trade` (a list, or a JSON string). A row that
  cannot be read is skipped and logged: it never stops the others.
- Every documented status code is in `STATUSES`; another code keeps the order open.
- Fills: quantity and average price from the executions (`trade[].q`, `p`); where a
  finished order lists none, `q - leaves_qty` with no price. No order row carries a
  commission: the fee comes from the cash flows (`commissions`, `tradernet_cash.py`).
- Times carry no zone in Tradernet's answers; they are read in `TRADERNET_ZONE`
  (default Europe/Moscow, the only zone its documentation names).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from . import tradernet_api as api
from .base import Account, BrokerError, CashMove, Evidence, NoAnswer, OrderSpec, Position, Refused, Sighting

log = logging.getLogger(__name__)
ZONE = ZoneInfo("Europe/Moscow")

# code: (the documented meaning, what it says about the order)
STATUSES: dict[int, tuple[str, Evidence]] = {
    0: ("was ignored", "reject"),
    1: ("received", "accept"),
    2: ("processing the cancellation", "accept"),
    10: ("active", "accept"),
    11: ("sent", "accept"),
    12: ("partially completed", "part_fill"),
    20: ("partially performed", "part_fill"),
    21: ("executed", "fill"),
    30: ("partially cancelled", "cancel"),
    31: ("cancelled", "cancel"),
    70: ("rejected", "reject"),
    71: ("expired", "expire"),
    72: ("partially executed and expired", "expire"),
    74: ("error of sending", "reject"),
    75: ("error of cancellation", "accept"),
}
SIDES = {1: "buy", 2: "buy", 3: "sell", 4: "sell"}


def _dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BrokerError(f"{where}: {value!r} is not a number")
    text = repr(value) if isinstance(value, float) else str(value).strip().replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise BrokerError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite():
        raise BrokerError(f"{where}: {value!r} is not a number")
    return number


def _orders(answer: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """The order rows of a getNotifyOrderJson / getOrdersHistory answer."""
    result = answer.get("result", answer)
    if not isinstance(result, dict):
        raise BrokerError(f"{what}: cannot read the answer")
    orders = result.get("orders")
    if orders in (None, [], ""):
        return []
    listed = orders.get("order", []) if isinstance(orders, dict) else orders
    if listed is None:
        return []
    if isinstance(listed, dict):  # a single order comes as an object
        listed = [listed]
    if not isinstance(listed, list):
        raise BrokerError(f"{what}: cannot read the order list")
    return [o for o in listed if isinstance(o, dict)]


def client_ref(order: dict[str, Any]) -> int | None:
    """Our id as the row carries it: None where it carries none; 0 for another client's id."""
    for key in ("user_order_id", "userOrderId"):
        value = order.get(key)
        if value in (None, "", 0, "0"):
            continue
        text = str(value).removeprefix("apiv2:")
        return int(text) if text.isdigit() else 0
    return None


def _time(value: Any, zone: ZoneInfo) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        local = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return None
    return (local if local.tzinfo else local.replace(tzinfo=zone)).astimezone(UTC)


def _executions(order: dict[str, Any], where: str) -> list[dict[str, Any]]:
    trades = order.get("trade", order.get("trades"))
    if isinstance(trades, str):  # putStopLoss's example: "{}" / "[]" as JSON text
        try:
            trades = json.loads(trades)
        except ValueError:
            raise BrokerError(f"{where}: cannot read its executions") from None
    if trades in (None, {}, []):
        return []
    if isinstance(trades, dict):
        trades = [trades]
    if not isinstance(trades, list) or not all(isinstance(t, dict) for t in trades):
        raise BrokerError(f"{where}: cannot read its executions")
    return trades


def sighting(order: dict[str, Any], zone: ZoneInfo = ZONE) -> Sighting:
    """One listed order, strictly: BrokerError if it cannot be read."""
    order_id = order.get("id", order.get("order_id"))
    if order_id in (None, ""):
        raise BrokerError(f"an order without an id: {str(order)[:200]}")
    where = f"order {order_id}"
    stat = order.get("stat")
    if isinstance(stat, str) and stat.isdigit():
        stat = int(stat)
    side = SIDES.get(int(order.get("oper") or 0))
    symbol = order.get("instr")
    if side is None or not isinstance(symbol, str):
        raise BrokerError(f"{where}: no side or instrument")
    quantity = _dec(order.get("q"), where)
    trades = _executions(order, where)
    filled = sum((_dec(t.get("q"), where) for t in trades), Decimal(0))
    value = sum((_dec(t.get("q"), where) * _dec(t.get("p"), where) for t in trades), Decimal(0))
    meaning, evidence = STATUSES.get(stat, (None, None)) if isinstance(stat, int) else (None, None)
    note = f"Tradernet status {stat}" + (f" ({meaning})" if meaning else " (not documented)")
    if not trades and evidence in ("fill", "part_fill", "cancel", "expire") and "leaves_qty" in order:
        filled = quantity - _dec(order["leaves_qty"], where)  # finished without executions listed: no price
        note += "; executions not listed"
    text = order.get("text") or order.get("@text")
    if evidence == "reject" and text:
        note = f"{note}: {text}"
    return Sighting(
        broker_order_id=str(order_id),
        broker_ref=client_ref(order),
        symbol=symbol,
        side=side,
        quantity=quantity,
        placed_at=_time(order.get("date"), zone),
        status=str(stat),
        evidence=evidence,
        filled=filled,
        average_price=(value / filled).quantize(Decimal("0.000001")) if trades and filled else None,
        fee=None,
        trade_ids=tuple(str(t["id"]) for t in trades if t.get("id") is not None),
        note=note,
    )


class TradernetBroker:
    name = "tradernet"
    booking_lag = timedelta(days=7)  # a cash flow is dated by its value day, listed when booked: days later

    def __init__(self, client: Any, zone: ZoneInfo = ZONE) -> None:
        self.api = client
        self.zone = zone

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return api.call(self.api, what, method, *args, **kwargs)
        except api.TradernetRefused as exc:
            raise Refused(str(exc)) from exc
        except api.TradernetError as exc:
            raise NoAnswer(str(exc)) from exc

    def place(self, order: OrderSpec) -> Sighting:
        if order.quantity != order.quantity.to_integral_value():
            raise Refused(f"Tradernet takes whole shares; {order.quantity} is not")
        answer = self._call(
            f"putTradeOrder {order.client_order_id}",
            "buy" if order.side == "buy" else "sell",
            order.symbol,
            quantity=int(order.quantity),
            price=float(order.limit_price) if order.limit_price is not None else 0.0,
            duration="day",
            use_margin=False,
            custom_order_id=order.broker_ref,
        )
        order_id = answer.get("order_id", answer.get("id"))
        if order_id in (None, ""):
            raise NoAnswer(f"putTradeOrder {order.client_order_id}: no order id in the answer {str(answer)[:200]}")
        return Sighting(
            broker_order_id=str(order_id),
            broker_ref=order.broker_ref,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            placed_at=datetime.now(UTC),
            status="placed",
            evidence="accept",
            note=f"Tradernet took it as order {order_id}",
        )

    def orders(self, since: datetime) -> list[Sighting]:
        today = _orders(self._call("getNotifyOrderJson", "get_placed", active=False), "getNotifyOrderJson")
        local_since = since.astimezone(self.zone).replace(tzinfo=None)
        local_now = datetime.now(self.zone).replace(tzinfo=None)
        history = _orders(
            self._call("getOrdersHistory", "get_historical", start=local_since, end=local_now + timedelta(days=1)),
            "getOrdersHistory",
        )
        seen: dict[str, Sighting] = {}
        for row in [*history, *today]:  # today's list last: it is the fresher
            try:
                s = sighting(row, self.zone)
            except (BrokerError, ValueError, TypeError) as exc:
                log.warning("tradernet: skipped an order row that cannot be read: %s", exc)
                continue
            seen[s.broker_order_id] = s
        return list(seen.values())

    def cancel(self, broker_order_id: str) -> None:
        if not broker_order_id.isdigit():
            raise Refused(f"{broker_order_id!r} is not a Tradernet order id")
        self._call(f"delTradeOrder {broker_order_id}", "cancel", int(broker_order_id))

    def commissions(self, since: datetime) -> dict[str, Decimal]:
        from . import tradernet_cash

        try:
            return tradernet_cash.commissions(self.api, since)
        except api.TradernetError as exc:
            raise NoAnswer(str(exc)) from exc

    def cash_moves(self, since: datetime | None = None) -> list[CashMove]:
        from . import tradernet_cash

        try:
            return tradernet_cash.cash_moves(self.api, since)
        except api.TradernetError as exc:
            raise NoAnswer(str(exc)) from exc

    def quote(self, symbol: str) -> Decimal | None:
        """The last trade price (`ltp`) from getStockQuotesJson; None if Tradernet has none."""
        answer = self._call(f"getStockQuotesJson {symbol}", "get_quotes", [symbol])
        result = answer.get("result", answer)
        listed = result.get("q") if isinstance(result, dict) else None
        if not isinstance(listed, list):
            raise BrokerError(f"getStockQuotesJson {symbol}: cannot read the quotes")
        for q in listed:
            if isinstance(q, dict) and q.get("c") == symbol and q.get("ltp") not in (None, 0, ""):
                price = _dec(q["ltp"], symbol)
                return price if price > 0 else None
        return None

    def account(self) -> Account:
        answer = self._call("getPositionJson", "account_summary")
        result = answer.get("result", answer)
        ps = result.get("ps", result) if isinstance(result, dict) else None
        if not isinstance(ps, dict) or not ("pos" in ps or "acc" in ps):
            raise BrokerError("getPositionJson: the answer has no positions or cash")
        positions: dict[str, Position] = {}
        for p in ps.get("pos") or []:
            symbol = p.get("i")
            if not isinstance(symbol, str):
                raise BrokerError(f"getPositionJson: a position without a ticker: {str(p)[:200]}")
            positions[symbol] = Position(
                symbol, _dec(p.get("q"), symbol), _dec(p.get("bal_price_a", 0), symbol), str(p.get("curr"))
            )
        cash: dict[str, Decimal] = {}
        for a in ps.get("acc") or []:
            currency = a.get("curr")
            if not isinstance(currency, str):
                raise BrokerError(f"getPositionJson: a cash line without a currency: {str(a)[:200]}")
            cash[currency] = cash.get(currency, Decimal(0)) + _dec(a.get("s"), currency)  # "available funds"
        return Account(positions=positions, cash=cash)
