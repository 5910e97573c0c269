"""The Tradernet account through tradernet-sdk: orders, their status, positions and cash.

Every order goes out as a cash order (`use_margin=False`: the SDK defaults to margin)
with the outbox's number as `user_order_id`, so that `find` can match it after a
restart: first among today's orders (`getNotifyOrderJson`), then the last week's
(`getOrdersHistory`).

What the answers look like follows Tradernet's API documentation (freedom24.com/
tradernet-api: orders-send, orders-get-current-history, portfolio-get-changes) and the
SDK's own use of them (`cancel_all` reads `result.orders.order`); this machine cannot
reach the live API to re-check them. So the adapter is strict: an answer it cannot read
is an error, and an order status code it does not know leaves the order unfinished
(`submitted`, polled again), never guessed filled. Check it with one small order on a
real account before trusting it with more.

Quotes: `getStockQuotesJson` answers `result.q`, a list of `{c: ticker, ltp: last price, ...}`.

Status codes (`stat`): 21 filled, 31 cancelled, 70 rejected; any other code is an order
still working (`partially_filled` once its trades add up to more than nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from . import tradernet_api as api
from .base import Account, BrokerError, BrokerOrder, CashMove, OrderSpec, Position

FILLED, CANCELLED, REJECTED = 21, 31, 70
HISTORY_DAYS = 7


def _dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BrokerError(f"{where}: {value!r} is not a number")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except ArithmeticError:
        raise BrokerError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite():
        raise BrokerError(f"{where}: {value!r} is not a number")
    return number


def _orders(answer: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """The order list of a getNotifyOrderJson / getOrdersHistory answer."""
    result = answer.get("result", answer)
    orders = result.get("orders") if isinstance(result, dict) else None
    if orders is None or orders == []:
        return []
    listed = orders.get("order", []) if isinstance(orders, dict) else orders
    if isinstance(listed, dict):  # a single order comes as an object
        listed = [listed]
    if not isinstance(listed, list) or not all(isinstance(o, dict) for o in listed):
        raise BrokerError(f"{what}: cannot read the order list")
    return listed


def _user_order_id(order: dict[str, Any]) -> int | None:
    for key in ("user_order_id", "userOrderId"):
        value = order.get(key)
        if value not in (None, ""):
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


def to_broker_order(ref: int, order: dict[str, Any]) -> BrokerOrder:
    """One listed order as the outbox's view of it."""
    where = f"order {order.get('id')}"
    stat = order.get("stat")
    trades = order.get("trades") or []
    if not isinstance(trades, list):
        raise BrokerError(f"{where}: cannot read its trades")
    filled = sum((_dec(tr.get("q"), where) for tr in trades), Decimal(0))
    value = sum((_dec(tr.get("q"), where) * _dec(tr.get("p"), where) for tr in trades), Decimal(0))
    fee = sum((_dec(tr["commission"], where) for tr in trades if "commission" in tr), Decimal(0))
    if stat == FILLED and not trades:  # filled without its trades listed: the order's own figures
        filled = _dec(order.get("q"), where)
        value = filled * _dec(order.get("p"), where)
    if stat == FILLED:
        status, note = "filled", ""
    elif stat == CANCELLED:
        status, note = "cancelled", str(order.get("stat_d") or "cancelled at the broker")
    elif stat == REJECTED:
        status, note = "rejected", str(order.get("stat_d") or order.get("rejectReason") or "rejected by the broker")
    else:
        status, note = ("partially_filled" if filled > 0 else "submitted"), f"Tradernet status {stat}"
    return BrokerOrder(
        ref=ref,
        broker_order_id=str(order.get("id")),
        status=status,
        filled_quantity=filled,
        average_price=(value / filled).quantize(Decimal("0.000001")) if filled else None,
        fee=fee,
        note=note,
    )


class TradernetBroker:
    name = "tradernet"

    def __init__(self, client: Any) -> None:
        self.api = client

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return api.call(self.api, what, method, *args, **kwargs)
        except api.TradernetError as exc:
            raise BrokerError(str(exc)) from exc

    def place(self, order: OrderSpec) -> BrokerOrder:
        if order.quantity != order.quantity.to_integral_value():
            raise BrokerError(f"Tradernet takes whole shares; {order.quantity} is not")
        method = "buy" if order.side == "buy" else "sell"
        answer = self._call(
            f"putTradeOrder {order.client_order_id}",
            method,
            order.symbol,
            quantity=int(order.quantity),
            price=float(order.limit_price) if order.limit_price is not None else 0.0,
            duration="day",
            use_margin=False,
            custom_order_id=order.ref,
        )
        order_id = answer.get("order_id") or answer.get("id")
        if order_id is None:
            raise BrokerError(f"putTradeOrder {order.client_order_id}: no order id in the answer {answer!r:.200}")
        found = self.find(order.ref)  # its status right after placing (a market order may have filled)
        return found or BrokerOrder(ref=order.ref, broker_order_id=str(order_id), status="submitted")

    def find(self, ref: int) -> BrokerOrder | None:
        today = _orders(self._call("getNotifyOrderJson", "get_placed", active=False), "getNotifyOrderJson")
        for o in today:
            if _user_order_id(o) == ref:
                return to_broker_order(ref, o)
        now = datetime.now()  # the SDK formats naive times; pass both ends (its defaults are stale)
        history = _orders(
            self._call(
                "getOrdersHistory",
                "get_historical",
                start=now - timedelta(days=HISTORY_DAYS),
                end=now + timedelta(days=1),
            ),
            "getOrdersHistory",
        )
        for o in history:
            if _user_order_id(o) == ref:
                return to_broker_order(ref, o)
        return None

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

    def cancel(self, ref: int) -> BrokerOrder:
        found = self.find(ref)
        if found is None:
            raise BrokerError(f"Tradernet has no order {ref}")
        if found.status in ("filled", "cancelled", "rejected"):
            return found
        self._call(f"delTradeOrder {found.broker_order_id}", "cancel", int(found.broker_order_id))
        return self.find(ref) or found

    def account(self) -> Account:
        answer = self._call("getPositionJson", "account_summary")
        ps = answer.get("result", {}).get("ps") if isinstance(answer.get("result"), dict) else None
        if not isinstance(ps, dict):
            raise BrokerError("getPositionJson: the answer has no result.ps")
        positions: dict[str, Position] = {}
        for p in ps.get("pos") or []:
            symbol = p.get("i")
            if not isinstance(symbol, str):
                raise BrokerError(f"getPositionJson: a position without a ticker: {p!r:.200}")
            positions[symbol] = Position(
                symbol, _dec(p.get("q"), symbol), _dec(p.get("bal_price_a", 0), symbol), str(p.get("curr"))
            )
        cash: dict[str, Decimal] = {}
        for a in ps.get("acc") or []:
            currency = a.get("curr")
            if not isinstance(currency, str):
                raise BrokerError(f"getPositionJson: a cash line without a currency: {a!r:.200}")
            cash[currency] = cash.get(currency, Decimal(0)) + _dec(a.get("s"), currency)
        return Account(positions=positions, cash=cash)

    def cash_moves(self, since: datetime | None = None) -> list[CashMove]:
        """Deposits and dividends are already in Tradernet's cash; their itemised history
        (the broker report) is not read yet, so none is listed."""
        return []
