"""The trading node's outbox in SQLite: an order is written, with its number, before it
is sent, and every step of its life is logged with its time. No MQTT, no broker.

The client order id is unique: the same order sent again finds its row instead of making
a second one. `ref` (SQLite's row number, never reused) is the number the broker keeps
(Tradernet's `user_order_id`), so that after a crash the broker's side can be matched to
the outbox before anything is resent. Writes are `synchronous=FULL`: an order the node
has answered for survives a power cut.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from nodes.sqlite import connect, transaction
from schemas.trading import FINISHED, Halted, Order, OrderStep, PlaceOrder

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    ref             INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL UNIQUE,
    request         TEXT NOT NULL,
    mode            TEXT NOT NULL,
    reference_price TEXT NOT NULL,
    value_base      TEXT NOT NULL,
    status          TEXT NOT NULL,
    broker_order_id TEXT,
    filled          TEXT NOT NULL DEFAULT '0',
    average_price   TEXT,
    fee             TEXT NOT NULL DEFAULT '0',
    note            TEXT NOT NULL DEFAULT '',
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS order_steps (
    ref    INTEGER NOT NULL REFERENCES orders(ref),
    at     TEXT NOT NULL,
    status TEXT NOT NULL,
    note   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS order_steps_ref ON order_steps(ref);
CREATE INDEX IF NOT EXISTS orders_created ON orders(created);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

COLUMNS = (
    "ref, client_order_id, request, mode, reference_price, status, broker_order_id, filled, average_price, "
    "fee, note, created, updated"
)


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, synchronous="FULL", foreign_keys=True, schema=SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    # -- orders -----------------------------------------------------------------------------------
    def create(
        self, req: PlaceOrder, mode: str, reference_price: Decimal, value_base: Decimal, now: datetime | None = None
    ) -> Order:
        """Write a new order (status `new`); it must not exist yet (see `get`)."""
        at = (now or datetime.now(UTC)).isoformat()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO orders (client_order_id, request, mode, reference_price, value_base, status, created, "
                "updated) VALUES (?,?,?,?,?, 'new', ?, ?)",
                (req.client_order_id, req.model_dump_json(), mode, str(reference_price), str(value_base), at, at),
            )
            ref = cur.lastrowid
            db.execute("INSERT INTO order_steps VALUES (?,?, 'new', 'written to the outbox')", (ref, at))
        return self.get(req.client_order_id)  # type: ignore[return-value]

    def update(
        self,
        ref: int,
        status: str,
        *,
        note: str = "",
        broker_order_id: str | None = None,
        filled: Decimal | None = None,
        average_price: Decimal | None = None,
        fee: Decimal | None = None,
        now: datetime | None = None,
    ) -> Order:
        """Record what the broker said; a step is logged when the status or the note changes."""
        at = (now or datetime.now(UTC)).isoformat()
        with self._tx() as db:
            row = db.execute("SELECT client_order_id, status, note FROM orders WHERE ref=?", (ref,)).fetchone()
            if row is None:
                raise KeyError(ref)
            client_order_id, old_status, old_note = row
            if old_status in FINISHED and status != old_status:
                raise ValueError(f"order {client_order_id} is {old_status} already; it cannot become {status}")
            db.execute(
                "UPDATE orders SET status=?, note=?, broker_order_id=COALESCE(?, broker_order_id), "
                "filled=COALESCE(?, filled), average_price=COALESCE(?, average_price), fee=COALESCE(?, fee), "
                "updated=? WHERE ref=?",
                (
                    status,
                    note or old_note,
                    broker_order_id,
                    None if filled is None else str(filled),
                    None if average_price is None else str(average_price),
                    None if fee is None else str(fee),
                    at,
                    ref,
                ),
            )
            if status != old_status or (note and note != old_note):
                db.execute("INSERT INTO order_steps VALUES (?,?,?,?)", (ref, at, status, note))
        return self.get(client_order_id)  # type: ignore[return-value]

    def get(self, client_order_id: str) -> Order | None:
        row = self.db.execute(f"SELECT {COLUMNS} FROM orders WHERE client_order_id=?", (client_order_id,)).fetchone()
        return None if row is None else self._order(row)

    def unfinished(self) -> list[Order]:
        rows = self.db.execute(
            f"SELECT {COLUMNS} FROM orders WHERE status NOT IN ('filled','rejected','cancelled') ORDER BY ref"
        ).fetchall()
        return [self._order(r) for r in rows]

    def list(self, status: str | None = None, plan_id: str | None = None, limit: int = 50) -> list[Order]:
        rows = self.db.execute(
            f"SELECT {COLUMNS} FROM orders WHERE (? IS NULL OR status=?) "
            "AND (? IS NULL OR json_extract(request, '$.plan_id')=?) ORDER BY ref DESC LIMIT ?",
            (status, status, plan_id, plan_id, limit),
        ).fetchall()
        return [self._order(r) for r in rows]

    def turnover_since(self, since: datetime) -> Decimal:
        """The base-currency value of the orders sent (or being sent) since `since`: all but
        those rejected or cancelled without a fill."""
        rows = self.db.execute(
            "SELECT value_base FROM orders WHERE created >= ? AND NOT (status IN "
            "('rejected','cancelled') AND CAST(filled AS REAL) = 0)",
            (since.isoformat(),),
        )
        return sum((Decimal(r[0]) for r in rows), Decimal(0))

    def _order(self, row: tuple) -> Order:
        (
            ref,
            _cid,
            request,
            mode,
            reference_price,
            status,
            broker_order_id,
            filled,
            average_price,
            fee,
            note,
            created,
            updated,
        ) = row
        req = json.loads(request)
        steps = [
            OrderStep(status=s, at=a, note=n)
            for a, s, n in self.db.execute(
                "SELECT at, status, note FROM order_steps WHERE ref=? ORDER BY rowid", (ref,)
            )
        ]
        return Order(
            ref=ref,
            mode=mode,
            reference_price=Decimal(reference_price),
            status=status,
            broker_order_id=broker_order_id,
            filled_quantity=Decimal(filled),
            average_price=None if average_price is None else Decimal(average_price),
            fee=Decimal(fee),
            note=note,
            created=created,
            updated=updated,
            steps=steps,
            **{k: req[k] for k in ("client_order_id", "symbol", "side", "currency", "plan_id", "reason")},
            quantity=Decimal(req["quantity"]),
            limit_price=None if req["limit_price"] is None else Decimal(req["limit_price"]),
        )

    def request(self, client_order_id: str) -> PlaceOrder | None:
        row = self.db.execute("SELECT request FROM orders WHERE client_order_id=?", (client_order_id,)).fetchone()
        return None if row is None else PlaceOrder.model_validate_json(row[0])

    # -- the halt flag ----------------------------------------------------------------------------
    def halted(self) -> Halted | None:
        row = self.db.execute("SELECT value FROM settings WHERE key='halted'").fetchone()
        return None if row is None else Halted.model_validate_json(row[0])

    def set_halted(self, flag: Halted) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO settings VALUES ('halted', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (flag.model_dump_json(),),
            )
