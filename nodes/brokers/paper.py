"""The paper broker: a simulated account in SQLite that fills at the latest quote.

A market order fills at once at the quote moved against the trader by `slippage` (buys
pay more, sells get less); a limit order fills at that price if the limit allows it, and
is otherwise cancelled (paper orders never rest in a book). Each fill pays the fee
schedule's fee in the order's currency (also listed as a `fee` cash move). A buy needs the
cash for value + fee, a sell the shares: otherwise the order is refused, as a broker would.
Cash is kept per currency and never converted by itself (as at Freedom24: buying a USD share
needs USD): an order on a currency pair (`nodes/money/pairs.py`, `EURUSD_T0.ITS`) is the
exchange, filled like a share at the quote moved against the trader, with the exchange fee
in the quote currency, and it moves cash from one currency to the other (no position):
selling the pair needs the base currency's cash, buying it the quote's for value + fee.

Orders go through the trading node's state machine like live ones; the paper account can be
told to fail the ways a real broker does (`inject`, kept in the account file so that a test
can tell a running node's broker): `drop_after` books the order and then gives no answer,
`drop_before` gives none and books nothing, `late` books it at the next look at the order
lists, `refuse` answers a definite refusal, and `fail` on `orders` makes the lists unreadable.

The account file stands for the broker's side: the trading node places orders in it and
the portfolio node reads it, as both would talk to Tradernet. Every method is one
transaction (SQLite WAL, `BEGIN IMMEDIATE`), so the two processes never see half a fill.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates
from nodes.money.pairs import Pair, parse
from nodes.sqlite import connect, transaction

from .base import Account, BrokerError, CashMove, Evidence, NoAnswer, OrderSpec, Position, Refused, Sighting

PRICE = Decimal("0.000001")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cash (currency TEXT PRIMARY KEY, amount TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY, quantity TEXT NOT NULL, average_price TEXT NOT NULL, currency TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    ref INTEGER PRIMARY KEY, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    quantity TEXT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, filled TEXT NOT NULL,
    price TEXT, fee TEXT NOT NULL, note TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cash_moves (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL,
    at TEXT NOT NULL, note TEXT NOT NULL, symbol TEXT, key TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS faults (id INTEGER PRIMARY KEY, cmd TEXT NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS late (ref INTEGER PRIMARY KEY, spec TEXT NOT NULL);
"""
FAULTS = {"place": ("drop_after", "drop_before", "late", "refuse"), "orders": ("fail",)}


class PaperBroker:
    name = "paper"
    # a movement is dated inside the transaction that lists it (writers take turns): a late
    # listing cannot happen; 5 s cover a small step back of the wall clock (a replay writes
    # about 8 movements a second: a minute's overlap re-read hundreds at every sync)
    booking_lag = timedelta(seconds=5)

    def __init__(
        self,
        path: Path | str,
        fees: FeeSchedule | None = None,
        fx: Rates | None = None,
        slippage: Decimal = Decimal("0.001"),
    ) -> None:
        self.fees, self.fx, self.slippage = fees or FeeSchedule(), fx or Rates(), slippage
        self.db = connect(path, synchronous="FULL", schema=SCHEMA)  # a fill survives a power cut

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a locked or unusable account file is the broker not answering."""
        try:
            with transaction(self.db) as db:
                yield db
        except sqlite3.OperationalError as exc:
            raise BrokerError(f"the paper account cannot be written: {exc}") from exc

    # -- orders -----------------------------------------------------------------------------------
    def inject(self, cmd: str, kind: str, text: str = "") -> None:
        """Make the next `cmd` call (`place` or `orders`) fail as `kind` (see the module doc)."""
        if kind not in FAULTS.get(cmd, ()):
            raise ValueError(f"no fault {kind!r} for {cmd!r}: {FAULTS}")
        with self._tx() as db:
            db.execute("INSERT INTO faults (cmd, kind, text) VALUES (?,?,?)", (cmd, kind, text))

    def _fault(self, cmd: str) -> tuple[str, str] | None:
        """The next fault injected for `cmd`, taken off the queue."""
        with self._tx() as db:
            row = db.execute("SELECT id, kind, text FROM faults WHERE cmd=? ORDER BY id LIMIT 1", (cmd,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM faults WHERE id=?", (row[0],))
            return row[1], row[2]

    def place(self, order: OrderSpec) -> Sighting:
        fault = self._fault("place")  # consumed in its own transaction: a raise must not roll it back
        if fault and fault[0] == "refuse":
            raise Refused(fault[1] or "the paper broker refuses this order (injected)")
        if fault and fault[0] == "drop_before":
            raise NoAnswer("the connection dropped before the paper broker had the order (injected)")
        with self._tx() as db:
            if fault and fault[0] == "late":
                db.execute("INSERT INTO late VALUES (?,?)", (order.broker_ref, json.dumps(_spec_doc(order))))
            elif self._row(db, order.broker_ref) is not None:
                raise Refused(f"the paper broker has an order {order.broker_ref} already")
            else:
                self._book(db, order)
        if fault and fault[0] == "late":
            raise NoAnswer("no answer in time; the paper broker books it later (injected)")
        if fault and fault[0] == "drop_after":
            raise NoAnswer("the connection dropped after the paper broker booked the order (injected)")
        return self._row(self.db, order.broker_ref)  # type: ignore[return-value]

    def _book(self, db: sqlite3.Connection, order: OrderSpec) -> None:
        status, filled, price, fee, note = self._fill(db, order)
        db.execute(
            "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                order.broker_ref,
                order.client_order_id,
                order.symbol,
                order.side,
                str(order.quantity),
                order.currency,
                status,
                str(filled),
                None if price is None else str(price),
                str(fee),
                note,
                _now(),
            ),
        )
        if fee:
            db.execute(
                "INSERT INTO cash_moves (kind, amount, currency, at, note, symbol, key) VALUES ('fee',?,?,?,?,?,?)",
                (
                    str(-fee),
                    order.currency,
                    _now(),
                    f"fee of order {order.broker_ref}",
                    order.symbol,
                    f"paper-fee-{order.broker_ref}",
                ),
            )

    def _fill(self, db: sqlite3.Connection, o: OrderSpec) -> tuple[str, Decimal, Decimal | None, Decimal, str]:
        if o.quote <= 0:
            return "rejected", Decimal(0), None, Decimal(0), "no valid quote to fill against"
        sign = 1 if o.side == "buy" else -1
        price = (o.quote * (1 + sign * self.slippage)).quantize(PRICE, ROUND_HALF_UP)
        if o.limit_price is not None and sign * (price - o.limit_price) > 0:
            return (
                "cancelled",
                Decimal(0),
                None,
                Decimal(0),
                (f"the fill price {price} is beyond the limit {o.limit_price} (paper orders do not rest)"),
            )
        value = price * o.quantity
        fee = self.fees.fee(value, o.currency, self.fx, o.symbol)
        if (pair := parse(o.symbol)) is not None:
            return self._exchange(db, o, pair, price, fee)
        cash = self._cash(db, o.currency)
        held = self._position(db, o.symbol)
        if o.side == "buy":
            if cash < value + fee:
                return (
                    "rejected",
                    Decimal(0),
                    None,
                    Decimal(0),
                    (f"insufficient cash: {o.currency} {value + fee} needed, {cash} available"),
                )
            old_q = held.quantity if held else Decimal(0)
            old_avg = held.average_price if held else Decimal(0)
            new_q = old_q + o.quantity
            avg = ((old_q * old_avg + value) / new_q).quantize(PRICE, ROUND_HALF_UP)
            self._set_cash(db, o.currency, cash - value - fee)
            db.execute(
                "INSERT INTO positions VALUES (?,?,?,?) ON CONFLICT(symbol) DO UPDATE SET "
                "quantity=excluded.quantity, average_price=excluded.average_price",
                (o.symbol, str(new_q), str(avg), o.currency),
            )
        else:
            if held is None or held.quantity < o.quantity:
                return (
                    "rejected",
                    Decimal(0),
                    None,
                    Decimal(0),
                    (f"not enough shares: {o.quantity} to sell, {held.quantity if held else 0} held"),
                )
            left = held.quantity - o.quantity
            self._set_cash(db, o.currency, cash + value - fee)
            if left == 0:
                db.execute("DELETE FROM positions WHERE symbol=?", (o.symbol,))
            else:
                db.execute("UPDATE positions SET quantity=? WHERE symbol=?", (str(left), o.symbol))
        return "filled", o.quantity, price, fee, ""

    def _exchange(
        self, db: sqlite3.Connection, o: OrderSpec, pair: Pair, price: Decimal, fee: Decimal
    ) -> tuple[str, Decimal, Decimal | None, Decimal, str]:
        """A filled pair order: cash from one currency into the other, the fee in the quote's."""
        moves = pair.moves(o.side, o.quantity, price, fee)
        for currency, change in moves.items():
            have = self._cash(db, currency)
            if have + change < 0:
                return (
                    "rejected",
                    Decimal(0),
                    None,
                    Decimal(0),
                    f"insufficient cash: {currency} {-change} needed, {have} available",
                )
        for currency, change in moves.items():
            self._set_cash(db, currency, self._cash(db, currency) + change)
        return "filled", o.quantity, price, fee, ""

    def orders(self, since: datetime) -> list[Sighting]:
        if self._fault("orders"):
            raise NoAnswer("the paper broker's order list cannot be read (injected)")
        with self._tx() as db:
            for ref, spec in db.execute("SELECT ref, spec FROM late").fetchall():
                db.execute("DELETE FROM late WHERE ref=?", (ref,))
                if self._row(db, ref) is None:
                    self._book(db, _spec_from(spec))
        refs = self.db.execute("SELECT ref FROM orders WHERE at >= ? ORDER BY ref", (since.isoformat(),)).fetchall()
        return [self._row(self.db, r[0]) for r in refs]  # type: ignore[misc]

    @staticmethod
    def _row(db: sqlite3.Connection, ref: int) -> Sighting | None:
        row = db.execute(
            "SELECT ref, symbol, side, quantity, status, filled, price, fee, note, at FROM orders WHERE ref=?", (ref,)
        ).fetchone()
        if row is None:
            return None
        status = row[4]
        return Sighting(
            broker_order_id=f"paper-{row[0]}",
            broker_ref=row[0],
            symbol=row[1],
            side=row[2],
            quantity=Decimal(row[3]),
            placed_at=datetime.fromisoformat(row[9]),
            status=status,
            evidence=_EVIDENCE.get(status),
            filled=Decimal(row[5]),
            average_price=None if row[6] is None else Decimal(row[6]),
            fee=Decimal(row[7]),
            trade_ids=(f"paper-{row[0]}",) if Decimal(row[5]) > 0 else (),
            note=row[8],
        )

    def quote(self, symbol: str) -> Decimal | None:
        return None  # paper fills at the universe's latest close, which the order carries

    def cancel(self, broker_order_id: str) -> None:
        """Paper orders are final at once: nothing is left to cancel."""

    def commissions(self, since: datetime) -> dict[str, Decimal]:
        return {}  # each paper order reports its fee itself

    # -- account ----------------------------------------------------------------------------------
    def deposit(self, amount: Decimal, currency: str, note: str = "deposit", key: str | None = None) -> bool:
        """Credit cash (paper only: a real account is funded from the bank). A `key` makes it
        happen once: the same key again credits nothing and returns False."""
        if amount <= 0:
            raise BrokerError("a deposit must be above 0")
        with self._tx() as db:
            if key is not None and db.execute("SELECT 1 FROM cash_moves WHERE key=?", (key,)).fetchone():
                return False
            self._set_cash(db, currency, self._cash(db, currency) + amount)
            db.execute(
                "INSERT INTO cash_moves (kind, amount, currency, at, note, key) VALUES ('deposit',?,?,?,?,?)",
                (str(amount), currency, _now(), note, key),
            )
            return True

    def account(self) -> Account:
        self.db.execute("BEGIN")  # a read snapshot (WAL): consistent, and never waits for a writer
        try:
            positions = {
                r[0]: Position(r[0], Decimal(r[1]), Decimal(r[2]), r[3])
                for r in self.db.execute("SELECT symbol, quantity, average_price, currency FROM positions")
            }
            cash = {r[0]: Decimal(r[1]) for r in self.db.execute("SELECT currency, amount FROM cash")}
        finally:
            self.db.execute("COMMIT")
        return Account(positions=positions, cash=cash)

    def cash_moves(self, since: datetime | None = None) -> list[CashMove]:
        rows = self.db.execute(
            "SELECT kind, amount, currency, at, note, symbol, id FROM cash_moves WHERE at >= ? ORDER BY id",
            ((since or datetime.min.replace(tzinfo=UTC)).isoformat(),),
        )
        return [
            CashMove(r[0], Decimal(r[1]), r[2], datetime.fromisoformat(r[3]), r[4], r[5], id=f"paper-{r[6]}")
            for r in rows
        ]

    @staticmethod
    def _cash(db: sqlite3.Connection, currency: str) -> Decimal:
        row = db.execute("SELECT amount FROM cash WHERE currency=?", (currency,)).fetchone()
        return Decimal(row[0]) if row else Decimal(0)

    @staticmethod
    def _set_cash(db: sqlite3.Connection, currency: str, amount: Decimal) -> None:
        db.execute(
            "INSERT INTO cash VALUES (?,?) ON CONFLICT(currency) DO UPDATE SET amount=excluded.amount",
            (currency, str(amount)),
        )

    @staticmethod
    def _position(db: sqlite3.Connection, symbol: str) -> Position | None:
        row = db.execute(
            "SELECT symbol, quantity, average_price, currency FROM positions WHERE symbol=?", (symbol,)
        ).fetchone()
        return Position(row[0], Decimal(row[1]), Decimal(row[2]), row[3]) if row else None


def _now() -> str:
    return datetime.now(UTC).isoformat()


_EVIDENCE: dict[str, Evidence] = {"filled": "fill", "cancelled": "cancel", "rejected": "reject"}


def _spec_doc(order: OrderSpec) -> dict[str, str | int | None]:
    doc = {k: str(v) if isinstance(v, Decimal) else v for k, v in vars(order).items()}
    return doc


def _spec_from(text: str) -> OrderSpec:
    doc = json.loads(text)
    for key in ("quantity", "quote"):
        doc[key] = Decimal(doc[key])
    doc["limit_price"] = None if doc["limit_price"] is None else Decimal(doc["limit_price"])
    return OrderSpec(**doc)
