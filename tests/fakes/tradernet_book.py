"""The order book and account behind the fake Tradernet (`tests/fakes/tradernet.py`): orders,
executions, positions, cash, commissions and cash-flow rows, and the helpers a test moves
orders with. No HTTP here. The server calls `place`, `cancel`, `settle` and `row` under
`lock`; every public helper takes the lock itself.

Times: `clock()` is now (an aware datetime, UTC by default); every time a row shows is the
local time of `zone` without a zone, as Tradernet's rows are documented.

Money: cash is kept per currency and never converted by itself. An order is in its security's
currency (`currencies[symbol]`, USD where the test names none); an order on a currency pair of
the money market (`nodes.money.pairs`, `EURUSD_T0.ITS`: price = quote per unit of base, quantity
in base units) is in the pair's quote currency and is an exchange: each execution moves cash
between the pair's two currencies (sell: base -quantity, quote +value - commission; buy: quote
-(value + commission), base +quantity; the quote amount to the cent) and makes no position.
The commission of every execution (`commission`) is charged in the order's currency.

Funds: an order is refused (`funds_check`) when any currency it would spend at its price,
commission included, is more than the cash left after what the book's live orders hold (each
live order holds what its unfilled part would spend, commission included), or when a sale of
shares is more than the position left after the live sales of it. Nothing is ever lent: margin
actions (2, 4) need the cash or shares as cash actions do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import count
from math import inf
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from nodes.money.pairs import parse

LIVE = frozenset({1, 2, 10, 11, 12, 20, 75})  # received, cancelling, active, sent, partly filled, cancel error
BEHAVIOURS = frozenset({"fill", "rest", "partial", "closed"})
CENT = Decimal("0.01")
FLOW_NAMES = {
    "commission_for_trades": "Commission for trades",
    "bank": "Deposit by bank transfer",
    "card": "Deposit by card",
    "cashout": "Withdrawal",
    "dividend": "Dividends",
    "tax": "Tax",
    "commission": "Fee",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def stamp(at: datetime, ms: bool = False) -> str:
    """A zone-less local time as Tradernet writes it: 2015-12-23T17:05:02[.133]."""
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{at.microsecond // 1000:03d}" if ms else text


def refusal(text: str, code: int = 0) -> dict[str, Any]:
    """A documented method error: HTTP 200, nothing done."""
    return {"error": text, "code": code}


@dataclass
class Trade:
    id: int
    p: Decimal
    q: int
    at: datetime  # aware


@dataclass
class Order:
    id: int
    user_order_id: Any  # as sent (an int, or None)
    instr: str
    oper: int  # 1 buy, 2 buy on margin, 3 sell, 4 sell short: as sent
    type: int  # 1 market, 2 limit
    q: int
    p: Decimal  # the limit price, or the quote at booking for a market order
    exp: int
    at: datetime  # booked (aware)
    stat: int
    stat_prev: int
    changed: datetime  # the last status change (aware)
    mono: float  # time.monotonic() at booking (lists show it list_lag_s later); -inf when seeded
    text: str | None = None
    trades: list[Trade] = field(default_factory=list)
    then: int | None = None  # the status it takes after the next list call (10 after 1, 31 after 2)

    @property
    def buy(self) -> bool:
        return self.oper in (1, 2)

    @property
    def filled(self) -> int:
        return sum(t.q for t in self.trades)

    @property
    def leaves(self) -> int:
        return self.q - self.filled


@dataclass
class Book:
    prices: dict[str, list[tuple[date, Decimal]]]
    zone: str = "Europe/Moscow"
    clock: Callable[[], datetime] = field(default=_utc_now)
    cash: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, list[Decimal]] = field(default_factory=dict)  # symbol: [quantity, average price]
    currencies: dict[str, str] = field(default_factory=dict)  # a security's currency (default USD; pairs: quote)
    lots: dict[str, int] = field(default_factory=dict)
    min_step: dict[str, Decimal] = field(default_factory=dict)
    suspended: set[str] = field(default_factory=set)
    behaviour: dict[str, str] = field(default_factory=dict)
    funds_check: str = "later"  # "put": refuse at putTradeOrder; "later": book, then reject (70)
    commission_rate: Decimal = Decimal("0.001")
    commission_min: Decimal = Decimal("1.00")
    orders: list[Order] = field(default_factory=list)
    flows: list[dict[str, Any]] = field(default_factory=list)  # getUserCashFlows rows, oldest first
    lock: threading.RLock = field(default_factory=threading.RLock)
    _order_ids: Iterator[int] = field(default_factory=lambda: count(4_982_349_829_328, 7), repr=False)
    _trade_ids: Iterator[int] = field(default_factory=lambda: count(40_543_041, 3), repr=False)

    # -- time and prices ----------------------------------------------------------------------------
    def now(self) -> datetime:
        at = self.clock()
        return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(self.zone))

    def local(self, at: datetime) -> datetime:
        """`at` as a naive local time of `zone`."""
        return at.astimezone(ZoneInfo(self.zone)).replace(tzinfo=None)

    def quote(self, symbol: str) -> Decimal | None:
        points = self.prices.get(symbol)
        return points[-1][1] if points else None

    def commission(self, value: Decimal) -> Decimal:
        return max((value * self.commission_rate).quantize(CENT, ROUND_HALF_UP), self.commission_min)

    def currency(self, symbol: str) -> str:
        """The currency orders on `symbol` are in: a pair's quote currency, else the security's."""
        pair = parse(symbol)
        return pair.quote if pair is not None else self.currencies.get(symbol, "USD")

    def costs(self, symbol: str, buy: bool, qty: int, price: Decimal) -> tuple[dict[str, Decimal], Decimal]:
        """What an execution of `qty` at `price` does to the cash per currency, its commission
        included, and that commission (in `currency(symbol)`)."""
        pair = parse(symbol)
        if pair is None:
            value = price * qty
            fee = self.commission(value)
            return {self.currency(symbol): -(value + fee) if buy else value - fee}, fee
        value = (price * qty).quantize(CENT, ROUND_HALF_UP)  # the quote currency's amount, to the cent
        fee = self.commission(value)
        if buy:
            return {pair.quote: -(value + fee), pair.base: Decimal(qty)}, fee
        return {pair.base: -Decimal(qty), pair.quote: value - fee}, fee

    # -- putTradeOrder, delTradeOrder and the list calls (called under the lock) ----------------------
    def place(self, p: dict[str, Any]) -> dict[str, Any]:
        symbol = p.get("instr_name")
        action, kind, exp, qty = (_flag(p.get(k)) for k in ("action_id", "order_type_id", "expiration_id", "qty"))
        if action is None or action not in (1, 2, 3, 4):
            return refusal("Invalid transaction identifier, allowed values 1 - purchase, 3 - sale")
        if not isinstance(symbol, str) or self.quote(symbol) is None:
            return refusal(f"Security {symbol} not found")
        if kind is None or kind not in (1, 2):
            return refusal("Unsupported order type")
        if exp is None or exp not in (1, 2, 3):
            return refusal("Invalid order expiration")
        if qty is None or qty <= 0:
            return refusal("Invalid quantity")
        lot = self.lots.get(symbol, 1)
        if qty % lot:
            return refusal(f"The quantity must be a multiple of the lot size ({lot})")
        limit = _decimal(p.get("limit_price"))
        if kind == 2:
            step = self.min_step.get(symbol, CENT)
            if limit is None or limit <= 0:
                return refusal("Invalid limit price")
            if limit % step:
                return refusal(f"The price must be a multiple of the minimum step {step}")
        uid = p.get("user_order_id")
        if uid is not None and _flag(uid) is None:
            return refusal("Invalid user_order_id")
        if symbol in self.suspended:
            return refusal(f"Trading in {symbol} is suspended")
        quote = self.quote(symbol)
        assert quote is not None
        price = limit if kind == 2 and limit is not None else quote
        short = self._shortfall(symbol, action in (1, 2), qty, price)
        if short and self.funds_check == "put":
            return refusal(short)
        mode = self.behaviour.get(symbol, "fill")
        if mode not in BEHAVIOURS:
            raise ValueError(f"behaviour[{symbol!r}] = {mode!r}: not one of {sorted(BEHAVIOURS)}")
        now = self.now()
        stat = 1 if mode == "closed" else 10
        oid = next(self._order_ids)
        order = Order(oid, uid, symbol, action, kind, qty, price, exp, now, stat, 0, now, monotonic())
        self.orders.append(order)
        if short:
            self._status(order, 70, short)
        elif mode == "closed":
            order.then = 10
        else:
            self._work(order, mode)
        return {"order_id": order.id}

    def cancel(self, order_id: Any) -> dict[str, Any]:
        order = self.order(order_id)
        if order is None:
            return refusal(f"Order {order_id} not found")
        if order.stat not in LIVE or order.stat == 2:
            return refusal(f"The order {order_id} cannot be cancelled (status {order.stat})")
        self._status(order, 2)
        order.then = 31  # 30 if it has executions by then
        return {"order_id": order.id}

    def settle(self) -> None:
        """After a list call: cancellations done, received orders active."""
        for order in self.orders:
            if order.then is not None and order.stat in LIVE:
                self._status(order, 30 if order.then == 31 and order.filled else order.then)
            order.then = None

    def row(self, o: Order) -> dict[str, Any]:
        """The order as both lists show it, built fresh, without the client id (see the server)."""
        row: dict[str, Any] = {
            "id": o.id,
            "order_id": o.id,
            "instr": o.instr,
            "oper": o.oper,
            "type": o.type,
            "q": o.q,
            "leaves_qty": o.leaves,
            "p": float(o.p),
            "cur": self.currency(o.instr),
            "exp": o.exp,
            "date": stamp(self.local(o.at), ms=True),
            "stat": o.stat,
            "stat_prev": o.stat_prev,
            "stat_orig": o.stat,
            "stat_d": stamp(self.local(o.changed), ms=True),
            "trade": [
                {"id": t.id, "p": float(t.p), "q": t.q, "v": float(t.p * t.q), "date": stamp(self.local(t.at))}
                for t in o.trades
            ],
        }
        if o.stat in (70, 74) and o.text:
            row["text"] = o.text
        return row

    # -- helpers for tests --------------------------------------------------------------------------
    def order(self, order_id: Any) -> Order | None:
        with self.lock:
            return next((o for o in self.orders if o.id == order_id and type(order_id) is int), None)

    def booked(self, user_order_id: Any) -> list[dict[str, Any]]:
        """The rows of the orders booked with this client id, with `user_order_id` as sent."""
        with self.lock:
            return [{**self.row(o), "user_order_id": o.user_order_id} for o in self._matching(user_order_id, None)]

    def count(self, user_order_id: Any = None, symbol: str | None = None) -> int:
        """How many orders the book holds (seeded ones too), by client id and/or symbol."""
        with self.lock:
            return len(self._matching(user_order_id, symbol))

    def fill(self, order_id: int, qty: int, price: Decimal | None = None) -> None:
        """One more execution of a live order, at `price` or the latest close."""
        with self.lock:
            order = self._live(order_id)
            if not 0 < qty <= order.leaves:
                raise ValueError(f"order {order_id} has {order.leaves} left, not {qty}")
            self._execute(order, qty, price if price is not None else self.quote(order.instr) or order.p)

    def expire(self, order_id: int) -> None:
        with self.lock:
            order = self._live(order_id)
            self._status(order, 72 if order.filled else 71)

    def cancel_at_broker(self, order_id: int) -> None:
        with self.lock:
            order = self._live(order_id)
            self._status(order, 30 if order.filled else 31)

    def reject(self, order_id: int, text: str) -> None:
        with self.lock:
            self._status(self._live(order_id), 70, text)

    def open_market(self, symbol: str) -> None:
        """The market of `symbol` opens: its orders work as under "fill" from now on."""
        with self.lock:
            self.behaviour[symbol] = "fill"
            for order in self.orders:
                if order.instr == symbol and order.stat in LIVE and order.stat != 2:
                    if order.stat == 1:
                        self._status(order, 10)
                        order.then = None
                    self._work(order, "fill")

    def seed_order(
        self,
        user_order_id: Any,
        symbol: str,
        side: str,
        qty: int,
        stat: int = 21,
        when: datetime | None = None,
        price: Decimal | None = None,
    ) -> int:
        """An order placed earlier (another installation, an outbox since reset): in both lists at
        once, with executions for 21 (whole) and 20/30/72 (half); cash and positions do not move."""
        if side not in ("buy", "sell"):
            raise ValueError(f"side {side!r}: buy or sell")
        with self.lock:
            at = when if when is not None else self.now()
            at = at if at.tzinfo else at.replace(tzinfo=ZoneInfo(self.zone))
            p = price if price is not None else self.quote(symbol) or Decimal(1)
            oper = 1 if side == "buy" else 3
            order = Order(next(self._order_ids), user_order_id, symbol, oper, 1, qty, p, 1, at, stat, 10, at, -inf)
            done = qty if stat == 21 else max(qty // 2, 1) if stat in (20, 30, 72) else 0
            if done:
                order.trades.append(Trade(next(self._trade_ids), p, done, at))
            if stat in (70, 74):
                order.text = "Rejected"
            self.orders.append(order)
            return order.id

    def cash_flow(
        self, type_code: str, amount: Decimal | str, currency: str, comment: str = "", on: date | None = None
    ) -> None:
        """A money movement (bank, card, cashout, dividend, tax, commission, ...): a getUserCashFlows
        row, and `amount` (signed) added to `cash[currency]`."""
        value = Decimal(str(amount))
        with self.lock:
            self.cash[currency] = self.cash.get(currency, Decimal(0)) + value
            self._flow(type_code, value, currency, comment, on or self.local(self.now()).date())

    # -- inside --------------------------------------------------------------------------------------
    def _matching(self, user_order_id: Any, symbol: str | None) -> list[Order]:
        return [
            o
            for o in self.orders
            if (user_order_id is None or o.user_order_id == user_order_id) and (symbol is None or o.instr == symbol)
        ]

    def _live(self, order_id: int) -> Order:
        order = self.order(order_id)
        if order is None or order.stat not in LIVE:
            raise ValueError(f"order {order_id} is not live: {order and order.stat}")
        return order

    def _status(self, order: Order, stat: int, text: str | None = None) -> None:
        order.stat_prev, order.stat, order.changed = order.stat, stat, self.now()
        if text is not None:
            order.text = text

    def held(self) -> tuple[dict[str, Decimal], dict[str, int]]:
        """What the live orders hold: the cash per currency their unfilled parts would spend at
        their prices (commission included), and the shares per security their sales would sell."""
        cash: dict[str, Decimal] = {}
        shares: dict[str, int] = {}
        for o in self.orders:
            if o.stat not in LIVE or o.leaves <= 0:
                continue
            for currency, change in self.costs(o.instr, o.buy, o.leaves, o.p)[0].items():
                if change < 0:
                    cash[currency] = cash.get(currency, Decimal(0)) - change
            if not o.buy and parse(o.instr) is None:
                shares[o.instr] = shares.get(o.instr, 0) + o.leaves
        return cash, shares

    def _shortfall(self, symbol: str, buy: bool, qty: int, price: Decimal) -> str | None:
        """Why the account cannot take this order, net of what live orders already hold."""
        held_cash, held_shares = self.held()
        if not buy and parse(symbol) is None:
            own = self.positions.get(symbol, [Decimal(0)])[0] - held_shares.get(symbol, 0)
            if own < qty:
                return "Not enough securities"
        for currency, change in self.costs(symbol, buy, qty, price)[0].items():
            free = self.cash.get(currency, Decimal(0)) - held_cash.get(currency, Decimal(0))
            if change < 0 and free < -change:
                return "Insufficient funds"
        return None

    def _work(self, order: Order, mode: str) -> None:
        """What the exchange does with a live order at once."""
        quote = self.quote(order.instr)
        assert quote is not None
        reached = order.type == 1 or (order.p >= quote if order.buy else order.p <= quote)
        if mode == "fill" and reached:
            self._execute(order, order.leaves, quote)
        elif mode == "partial" and reached:
            lot = self.lots.get(order.instr, 1)
            part = order.q // 2 // lot * lot or (lot if order.q > lot else 0)
            if part:
                self._execute(order, min(part, order.leaves), quote)

    def _execute(self, order: Order, qty: int, price: Decimal) -> None:
        """One execution: the cash moves (a pair's between its currencies, with no position)."""
        trade = Trade(next(self._trade_ids), price, qty, self.now())
        order.trades.append(trade)
        moves, fee = self.costs(order.instr, order.buy, qty, price)
        for currency, change in moves.items():
            self.cash[currency] = self.cash.get(currency, Decimal(0)) + change
        if parse(order.instr) is None:
            value = price * qty
            held = self.positions.get(order.instr, [Decimal(0), Decimal(0)])
            if order.buy:
                total = held[0] + qty
                self.positions[order.instr] = [total, (held[0] * held[1] + value) / total if total else Decimal(0)]
            else:
                self.positions[order.instr] = [held[0] - qty, held[1]]
                if held[0] == qty:
                    del self.positions[order.instr]
        local = self.local(trade.at)
        comment = f"(Trade {trade.id} {local:%Y-%m-%d %H:%M:%S})"
        self._flow("commission_for_trades", -fee, self.currency(order.instr), comment, local.date())
        if order.leaves == 0:
            self._status(order, 21)
            order.then = None
        elif order.stat != 2:  # a cancellation in progress stays one
            self._status(order, 20)

    def _flow(self, type_code: str, amount: Decimal, currency: str, comment: str, on: date) -> None:
        n = len(self.flows) + 1
        self.flows.append(
            {
                "id": f"{n * 2654435761 % 16**10:010x}",  # a string, as documented, and not in order
                "type_code": type_code,
                "date": on.isoformat(),
                "sum": str(amount.quantize(CENT, ROUND_HALF_UP)),
                "currency": currency,
                "comment": comment,
                "type_code_name": FLOW_NAMES.get(type_code, type_code.replace("_", " ").capitalize()),
            }
        )


def _flag(value: Any) -> int | None:
    """An int that is not a bool, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
