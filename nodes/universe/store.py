"""The universe's SQLite store: securities, daily closes and a replay's market day. No
MQTT, no clock of its own (the caller says up to which day it reads).

Closes are stored as decimal text (never floats), keyed by (symbol, day); writing the
same prices again changes nothing, and a corrected price replaces the old one. Each
public method is one transaction: a failure leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

from pydantic import TypeAdapter

from nodes.sqlite import connect, transaction
from schemas.universe import PricePoint, Security

POINTS = TypeAdapter(list[PricePoint])

SCHEMA = """
CREATE TABLE IF NOT EXISTS securities (
    symbol    TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    currency  TEXT NOT NULL,
    exchange  TEXT NOT NULL DEFAULT '',
    lot_size  TEXT NOT NULL,
    min_trade TEXT NOT NULL,
    active    INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS prices (
    symbol TEXT NOT NULL REFERENCES securities(symbol),
    day    TEXT NOT NULL,
    close  TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (symbol, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class UnknownSymbol(KeyError):
    def __str__(self) -> str:
        return f"unknown symbol {self.args[0]!r}"


class Store:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, foreign_keys=True, schema=SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self.db)

    # -- securities -------------------------------------------------------------------------------
    def add(self, s: Security) -> bool:
        """Add a security; False (and nothing changed) if its symbol exists already."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO securities VALUES (?,?,?,?,?,?,?) ON CONFLICT(symbol) DO NOTHING",
                (s.symbol, s.name, s.currency, s.exchange, str(s.lot_size), str(s.min_trade), int(s.active)),
            )
            return cur.rowcount == 1

    def put(self, s: Security) -> None:
        """Insert or replace a security (its prices are kept)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO securities VALUES (?,?,?,?,?,?,?) ON CONFLICT(symbol) DO UPDATE SET "
                "name=excluded.name, currency=excluded.currency, exchange=excluded.exchange, "
                "lot_size=excluded.lot_size, min_trade=excluded.min_trade, active=excluded.active",
                (s.symbol, s.name, s.currency, s.exchange, str(s.lot_size), str(s.min_trade), int(s.active)),
            )

    def get(self, symbol: str) -> Security:
        row = self.db.execute("SELECT * FROM securities WHERE symbol=?", (symbol,)).fetchone()
        if row is None:
            raise UnknownSymbol(symbol)
        return _security(row)

    def securities(self, *, active_only: bool = False) -> list[Security]:
        sql = "SELECT * FROM securities" + (" WHERE active=1" if active_only else "") + " ORDER BY symbol"
        return [_security(r) for r in self.db.execute(sql)]

    # -- prices -------------------------------------------------------------------------------------
    def write_prices(self, symbol: str, points: Iterable[tuple[date, Decimal]], source: str) -> int:
        """Store closes; returns how many were new or different (0 on a repeated sync)."""
        return self.write_many({symbol: list(points)}, source)[symbol]

    def write_many(self, prices: dict[str, list[tuple[date, Decimal]]], source: str) -> dict[str, int]:
        """Store several symbols' closes in one transaction; per symbol, how many changed."""
        with self.batch(source) as write:
            return {symbol: write(symbol, points) for symbol, points in prices.items()}

    @contextmanager
    def batch(self, source: str) -> Iterator[Callable[[str, Iterable[tuple[date, Decimal]]], int]]:
        """One transaction for many symbols, written one at a time (so that only one
        symbol's prices are in memory): all of them are stored, or none."""
        with self._tx() as db:

            def write(symbol: str, points: Iterable[tuple[date, Decimal]]) -> int:
                self.get(symbol)
                rows = []
                for d, c in points:
                    if c <= 0 or not c.is_finite():
                        raise ValueError(f"{symbol}: a close that is not a positive number ({c} on {d})")
                    rows.append((symbol, d.isoformat(), format(c, "f"), source))
                before = db.total_changes
                db.executemany(
                    "INSERT INTO prices VALUES (?,?,?,?) ON CONFLICT(symbol, day) DO UPDATE SET "
                    "close=excluded.close, source=excluded.source WHERE prices.close != excluded.close",
                    rows,
                )
                return db.total_changes - before

            yield write

    def history(
        self, symbol: str, start: date | None = None, end: date | None = None, last: int | None = None
    ) -> list[PricePoint]:
        """Closes from `start` to `end` (inclusive), oldest first; only the last `last` of them if given."""
        self.get(symbol)
        rows = self.db.execute(
            "SELECT day, close FROM prices WHERE symbol=? AND day>=? AND day<=? ORDER BY day DESC LIMIT ?",
            (symbol, (start or date.min).isoformat(), (end or date.max).isoformat(), -1 if last is None else last),
        ).fetchall()
        # one validation of the whole list in pydantic's core: building 1,261 models one at a time
        # in Python was most of a history request's time (a replay asks 41 a month)
        return POINTS.validate_python([{"day": d, "close": c} for d, c in reversed(rows)])

    def latest(self, symbol: str, as_of: date | None = None) -> PricePoint | None:
        """The last close on or before `as_of` (None: the last of all)."""
        row = self.db.execute(
            "SELECT day, close FROM prices WHERE symbol=? AND day<=? ORDER BY day DESC LIMIT 1",
            (symbol, (as_of or date.max).isoformat()),
        ).fetchone()
        return None if row is None else PricePoint(day=date.fromisoformat(row[0]), close=Decimal(row[1]))

    def last_day(self) -> date | None:
        """The last day any active security has a close."""
        row = self.db.execute("SELECT MAX(day) FROM prices JOIN securities USING (symbol) WHERE active=1").fetchone()
        return None if row is None or row[0] is None else date.fromisoformat(row[0])

    def replay_day(self) -> date | None:
        row = self.db.execute("SELECT value FROM settings WHERE key='replay_day'").fetchone()
        return None if row is None else date.fromisoformat(row[0])

    def set_replay_day(self, day: date) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO settings VALUES ('replay_day', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (day.isoformat(),),
            )

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM prices").fetchone()[0])


def _security(row: tuple) -> Security:
    symbol, name, currency, exchange, lot_size, min_trade, active = row
    return Security(
        symbol=symbol,
        name=name,
        currency=currency,
        exchange=exchange,
        lot_size=Decimal(lot_size),
        min_trade=Decimal(min_trade),
        active=bool(active),
    )
