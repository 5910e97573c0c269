"""The trading node's outbox in SQLite: every order with its state, its fills and every
transition of its life (`lifecycle.py`), and the ids sent to the broker. No MQTT, no broker.

An order is written (`new`) before anything else happens, and `sending` is written, with
the broker id it goes out under, **before** the request leaves: an order found `sending`
after a crash may have reached the broker and is never sent again by itself.

Broker ids (Tradernet's `user_order_id`) are never reused, across outbox resets and
reinstallations: `prefix * 1,000,000 + counter`, the prefix drawn at random (1,000 ..
2,146: every id stays below 2**31, within any integer type the API may use) when the
outbox is made, and drawn again when the broker already has orders under it
(`Outbox.renew_prefix`). The counter only grows, also when an id is skipped.

Writes are `synchronous=FULL`: an order the node has answered for survives a power cut.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from nodes.sqlite import connect, transaction
from schemas.trading import Halted, Order, OrderStep, PlaceOrder, counts_in_turnover

from .lifecycle import FINISHED, OPEN, Cause, Event, InvalidTransition, Life, State

PREFIXES = range(1000, 2147)
PER_PREFIX = 1_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    ref             INTEGER PRIMARY KEY AUTOINCREMENT,
    client_order_id TEXT NOT NULL UNIQUE,
    request         TEXT NOT NULL,
    mode            TEXT NOT NULL,
    reference_price TEXT NOT NULL,
    value_base      TEXT NOT NULL,
    status          TEXT NOT NULL,
    broker_ref      INTEGER UNIQUE,
    previous_refs   TEXT NOT NULL DEFAULT '[]',
    broker_order_id TEXT,
    filled          TEXT NOT NULL DEFAULT '0',
    average_price   TEXT,
    fee             TEXT NOT NULL DEFAULT '0',
    fee_estimated   INTEGER NOT NULL DEFAULT 0,
    trade_ids       TEXT NOT NULL DEFAULT '[]',
    note            TEXT NOT NULL DEFAULT '',
    sent_at         TEXT,
    alerted         INTEGER NOT NULL DEFAULT 0,
    market_day      TEXT,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS order_steps (
    ref    INTEGER NOT NULL REFERENCES orders(ref),
    at     TEXT NOT NULL,
    status TEXT NOT NULL,
    note   TEXT NOT NULL,
    cause  TEXT NOT NULL DEFAULT '',
    by     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS order_steps_ref ON order_steps(ref);
CREATE INDEX IF NOT EXISTS orders_created ON orders(created);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

COLUMNS = (
    "ref, request, mode, reference_price, status, broker_ref, broker_order_id, filled, average_price, "
    "fee, fee_estimated, note, created, updated, value_base, market_day"
)
OPEN_STATES = tuple(sorted(OPEN))


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, synchronous="FULL", foreign_keys=True)
        self._migrate()
        self.db.executescript(SCHEMA)
        if self._setting("prefix") is None:
            self.renew_prefix(set())

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        """An outbox from before the state machine: add its columns; an order it left `new`
        may have been sent (that version sent before it recorded), so it becomes `unknown`,
        and `submitted` means the broker had it: `accepted`. One from before the market
        clock gets `market_day` (empty: the day it was created)."""
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(orders)")}
        if columns and "market_day" not in columns:
            with self._tx() as db:
                db.execute("ALTER TABLE orders ADD COLUMN market_day TEXT")
        if not columns or "broker_ref" in columns:
            return
        with self._tx() as db:
            for ddl in (
                "broker_ref INTEGER",
                "previous_refs TEXT NOT NULL DEFAULT '[]'",
                "fee_estimated INTEGER NOT NULL DEFAULT 0",
                "trade_ids TEXT NOT NULL DEFAULT '[]'",
                "sent_at TEXT",
                "alerted INTEGER NOT NULL DEFAULT 0",
            ):
                db.execute(f"ALTER TABLE orders ADD COLUMN {ddl}")
            db.execute("ALTER TABLE order_steps ADD COLUMN cause TEXT NOT NULL DEFAULT ''")
            db.execute("ALTER TABLE order_steps ADD COLUMN by TEXT NOT NULL DEFAULT ''")
            db.execute("UPDATE orders SET broker_ref=ref, sent_at=created")  # the old version sent `ref`
            db.execute("UPDATE orders SET status='unknown' WHERE status='new'")
            db.execute("UPDATE orders SET status='accepted' WHERE status='submitted'")
            db.execute("UPDATE order_steps SET status='accepted' WHERE status='submitted'")
            db.execute("CREATE UNIQUE INDEX IF NOT EXISTS orders_broker_ref ON orders(broker_ref)")

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    # -- orders -----------------------------------------------------------------------------------
    def create(
        self,
        req: PlaceOrder,
        mode: str,
        reference_price: Decimal,
        value_base: Decimal,
        now: datetime | None = None,
        market_day: date | None = None,
    ) -> Order:
        """Write a new order (state `new`); it must not exist yet (see `get`). `market_day`:
        the market clock's day (None: the day of `now`), whose turnover it counts in."""
        moment = now or datetime.now(UTC)
        at, day = moment.isoformat(), (market_day or moment.date()).isoformat()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO orders (client_order_id, request, mode, reference_price, value_base, status, market_day, "
                "created, updated) VALUES (?,?,?,?,?, 'new', ?, ?, ?)",
                (req.client_order_id, req.model_dump_json(), mode, str(reference_price), str(value_base), day, at, at),
            )
            db.execute(
                "INSERT INTO order_steps VALUES (?,?, 'new', 'written to the outbox', 'write', 'trading')",
                (cur.lastrowid, at),
            )
        return self.get(req.client_order_id)  # type: ignore[return-value]

    def apply(
        self,
        ref: int,
        event: Event,
        *,
        broker_order_id: str | None = None,
        trade_ids: Iterable[str] = (),
    ) -> Order:
        """Apply one event to order `ref` through the transition table and write the result
        with its step, in one transaction; `InvalidTransition` changes nothing. An event that
        changes neither the state nor the fills (a poll seeing the same thing) writes nothing."""
        at = event.at.isoformat()
        with self._tx() as db:
            row = db.execute(
                "SELECT status, filled, average_price, broker_order_id, trade_ids, sent_at FROM orders WHERE ref=?",
                (ref,),
            ).fetchone()
            if row is None:
                raise KeyError(ref)
            status, filled, average, known_id, known_trades, sent_at = row
            if known_id and broker_order_id and known_id != broker_order_id:
                raise InvalidTransition(f"order {ref} is broker order {known_id}, not {broker_order_id}")
            life = Life(State(status), Decimal(filled), None if average is None else Decimal(average))
            after = life.apply(event)
            trades = sorted(set(json.loads(known_trades)) | set(trade_ids))
            unchanged = after.state == life.state and after.filled == life.filled
            if unchanged and broker_order_id in (None, known_id) and trades == sorted(json.loads(known_trades)):
                return self.by_ref(ref)
            if event.cause in (Cause.SEND, Cause.RESEND):
                sent_at = at
            db.execute(
                "UPDATE orders SET status=?, filled=?, average_price=?, broker_order_id=COALESCE(?, broker_order_id), "
                "trade_ids=?, note=?, sent_at=?, updated=? WHERE ref=?",
                (
                    after.state.value,
                    str(after.filled),
                    None if after.average_price is None else str(after.average_price),
                    broker_order_id,
                    json.dumps(trades),
                    event.note,
                    sent_at,
                    at,
                    ref,
                ),
            )
            db.execute(
                "INSERT INTO order_steps VALUES (?,?,?,?,?,?)",
                (ref, at, after.state.value, event.note, event.cause.value, event.by),
            )
        return self.by_ref(ref)

    def set_fee(self, ref: int, fee: Decimal, *, estimated: bool) -> Order:
        """The order's fee: the broker's figure, or the fee schedule's marked as an estimate.
        Not a transition: a finished order's fee may still arrive from the broker later."""
        with self._tx() as db:
            db.execute("UPDATE orders SET fee=?, fee_estimated=? WHERE ref=?", (str(fee), 1 if estimated else 0, ref))
        return self.by_ref(ref)

    def mark_alerted(self, ref: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE orders SET alerted=1 WHERE ref=?", (ref,))

    def get(self, client_order_id: str) -> Order | None:
        row = self.db.execute("SELECT ref FROM orders WHERE client_order_id=?", (client_order_id,)).fetchone()
        return None if row is None else self.by_ref(row[0])

    def in_states(self, states: Iterable[str]) -> list[Order]:
        wanted = tuple(states)
        marks = ",".join("?" * len(wanted))
        rows = self.db.execute(f"SELECT ref FROM orders WHERE status IN ({marks}) ORDER BY ref", wanted).fetchall()
        return [self.by_ref(r[0]) for r in rows]

    def open(self) -> list[Order]:
        """Orders that may still change at the broker: sending, unknown, accepted, partly filled."""
        return self.in_states(OPEN_STATES)

    def estimated_fees(self, since: datetime) -> list[Order]:
        """Filled orders since `since` whose fee is still the schedule's estimate."""
        rows = self.db.execute(
            "SELECT ref FROM orders WHERE fee_estimated=1 AND CAST(filled AS REAL) > 0 AND updated >= ? ORDER BY ref",
            (since.isoformat(),),
        ).fetchall()
        return [self.by_ref(r[0]) for r in rows]

    def alerted(self, ref: int) -> bool:
        row = self.db.execute("SELECT alerted FROM orders WHERE ref=?", (ref,)).fetchone()
        return bool(row and row[0])

    def sent_at(self, ref: int) -> datetime | None:
        row = self.db.execute("SELECT sent_at FROM orders WHERE ref=?", (ref,)).fetchone()
        return None if row is None or row[0] is None else datetime.fromisoformat(row[0])

    def trade_ids(self, ref: int) -> list[str]:
        row = self.db.execute("SELECT trade_ids FROM orders WHERE ref=?", (ref,)).fetchone()
        return [] if row is None else list(json.loads(row[0]))

    def claimed(self) -> set[str]:
        """The broker order ids some order of this outbox already is."""
        return {r[0] for r in self.db.execute("SELECT broker_order_id FROM orders WHERE broker_order_id IS NOT NULL")}

    def watched(self) -> list[tuple[str, str, list[int]]]:
        """(client order id, symbol, broker ids) that must never show up at the broker: the
        earlier ids of orders an operator resent, and the ids of orders an operator abandoned."""
        rows = self.db.execute(
            "SELECT client_order_id, json_extract(request, '$.symbol'), previous_refs, status, broker_ref FROM orders "
            "WHERE previous_refs != '[]' OR status = 'abandoned'"
        )
        return [
            (cid, symbol, [*json.loads(refs), *([ref] if status == "abandoned" and ref is not None else [])])
            for cid, symbol, refs, status, ref in rows
        ]

    def previous_refs(self, ref: int) -> list[int]:
        row = self.db.execute("SELECT previous_refs FROM orders WHERE ref=?", (ref,)).fetchone()
        return [] if row is None else list(json.loads(row[0]))

    def list(self, status: str | None = None, plan_id: str | None = None, limit: int = 50) -> list[Order]:
        rows = self.db.execute(
            "SELECT ref FROM orders WHERE (? IS NULL OR status=?) "
            "AND (? IS NULL OR json_extract(request, '$.plan_id')=?) ORDER BY ref DESC LIMIT ?",
            (status, status, plan_id, plan_id, limit),
        ).fetchall()
        return [self.by_ref(r[0]) for r in rows]

    def turnover_on(self, day: date) -> Decimal:
        """The base-currency value of the orders of the market's `day` sent (or being sent):
        all but those never sent or finished without a fill."""
        rows = self.db.execute(
            "SELECT value_base, status, filled FROM orders WHERE COALESCE(market_day, substr(created, 1, 10)) = ?",
            (day.isoformat(),),
        )
        counted = (Decimal(v) for v, status, filled in rows if counts_in_turnover(status, Decimal(filled)))
        return sum(counted, Decimal(0))

    def by_ref(self, ref: int) -> Order:
        row = self.db.execute(f"SELECT {COLUMNS} FROM orders WHERE ref=?", (ref,)).fetchone()
        if row is None:
            raise KeyError(ref)
        (ref, request, mode, reference_price, status, broker_ref, broker_order_id, filled, average_price) = row[:9]
        fee, fee_estimated, note, created, updated, value_base, market_day = row[9:]
        req = json.loads(request)
        steps = [
            OrderStep(status=s, at=a, note=n, cause=c, by=b)
            for a, s, n, c, b in self.db.execute(
                "SELECT at, status, note, cause, by FROM order_steps WHERE ref=? ORDER BY rowid", (ref,)
            )
        ]
        return Order(
            ref=ref,
            broker_ref=broker_ref,
            mode=mode,
            reference_price=Decimal(reference_price),
            value_base=Decimal(value_base),
            market_day=market_day or created[:10],  # rows of older releases: the day they were made
            status=status,
            broker_order_id=broker_order_id,
            filled_quantity=Decimal(filled),
            average_price=None if average_price is None else Decimal(average_price),
            fee=Decimal(fee),
            fee_estimated=bool(fee_estimated),
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

    # -- broker ids -------------------------------------------------------------------------------
    def prefix(self) -> int:
        return int(self._setting("prefix") or 0)

    def renew_prefix(self, taken: set[int]) -> int:
        """Draw a new random prefix the broker has no order under (`taken`: the prefixes of
        the ids it lists) and start its counter at 1."""
        free = [p for p in PREFIXES if p not in taken and p != self.prefix()]
        if not free:
            raise RuntimeError("every broker id prefix is taken at the broker")
        prefix = random.SystemRandom().choice(free)
        with self._tx() as db:
            self._put(db, "prefix", str(prefix))
            self._put(db, "counter", "0")
        return prefix

    def next_broker_ref(self, skip: set[int] = frozenset()) -> int:  # type: ignore[assignment]
        """The next unused broker id (ids in `skip`, which the broker has already, are passed
        over and never used). The counter is written before the id is handed out."""
        with self._tx() as db:
            prefix = int(self._get(db, "prefix"))
            counter = int(self._get(db, "counter"))
            while True:
                counter += 1
                if counter >= PER_PREFIX:
                    raise RuntimeError("the broker id counter is exhausted: renew the prefix")
                ref = prefix * PER_PREFIX + counter
                if ref not in skip:
                    break
            self._put(db, "counter", str(counter))
        return ref

    def assign_broker_ref(self, ref: int, broker_ref: int) -> None:
        """Give order `ref` its broker id (before `send`); an operator's resend keeps the old
        one in `previous_refs`, since the broker may still show the first attempt."""
        with self._tx() as db:
            old = db.execute("SELECT broker_ref, previous_refs FROM orders WHERE ref=?", (ref,)).fetchone()
            previous = json.loads(old[1]) + ([old[0]] if old[0] is not None else [])
            db.execute(
                "UPDATE orders SET broker_ref=?, previous_refs=?, broker_order_id=NULL, alerted=0 WHERE ref=?",
                (broker_ref, json.dumps(previous), ref),
            )

    def owns(self, broker_ref: int) -> bool:
        """Whether `broker_ref` is (or was) one of this outbox's ids."""
        if self.db.execute("SELECT 1 FROM orders WHERE broker_ref=?", (broker_ref,)).fetchone():
            return True
        return any(broker_ref in json.loads(r[0]) for r in self.db.execute("SELECT previous_refs FROM orders"))

    # -- the halt flag and other settings ---------------------------------------------------------
    def halted(self) -> Halted | None:
        value = self._setting("halted")
        return None if value is None else Halted.model_validate_json(value)

    def set_halted(self, flag: Halted) -> None:
        with self._tx() as db:
            self._put(db, "halted", flag.model_dump_json())

    def _setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> str:
        return str(db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()[0])

    @staticmethod
    def _put(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value)
        )


__all__ = ["FINISHED", "Outbox"]
