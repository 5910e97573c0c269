"""The portfolio's SQLite store: the valuation history, one point per UTC day (the latest
of the day wins), and the money moved in and out of the account as the broker reported it.

A movement is kept once, keyed by (broker, the broker's id); a row without an id (the
paper account's older ones) is keyed by its content. The broker's latest word on an id
replaces what was kept. A sync asks the broker only for the movements dated since the
newest kept one minus the broker's `booking_lag` (its filter is by date, and a movement may
be dated a little before it is listed: Tradernet, `OVERLAP`; the paper account dates each
inside the transaction that lists it, so 5 s cover a clock's small step); the overlap comes
back with the same ids and counts once. A restart reads the kept ones: nothing is counted
twice. (With a week's overlap for the paper account, a replay, whose years pass in minutes,
read every movement again at every sync: 0.2 s of the portfolio's CPU a month by 2024.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from nodes.brokers.base import Broker, CashMove
from nodes.sqlite import connect, transaction
from schemas.portfolio import ValuationPoint

OVERLAP = timedelta(days=7)

SCHEMA = """
CREATE TABLE IF NOT EXISTS valuations (
    day TEXT PRIMARY KEY, total TEXT NOT NULL, positions TEXT NOT NULL, cash TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cash_moves (
    broker TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL,
    at TEXT NOT NULL, note TEXT NOT NULL, symbol TEXT, PRIMARY KEY (broker, id));
CREATE INDEX IF NOT EXISTS cash_moves_at ON cash_moves (broker, at);
"""


def _utc(at: datetime) -> datetime:
    """Aware and in UTC (a naive time is taken as UTC), so that kept times sort as text."""
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def content_key(move: CashMove) -> str:
    """The key of a movement without the broker's id: what it is, hashed."""
    amount = format(move.amount.normalize(), "f")
    at = _utc(move.at).isoformat()
    text = "\x1f".join((move.kind, amount, move.currency, at, move.note, move.symbol or ""))
    return "content:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _broker_id(key: str) -> str:
    return "" if key.startswith("content:") else key


class PortfolioStore:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, schema=SCHEMA)

    def close(self) -> None:
        self.db.close()

    def record(self, point: ValuationPoint, at: str) -> None:
        self.db.execute(
            "INSERT INTO valuations VALUES (?,?,?,?,?) ON CONFLICT(day) DO UPDATE SET "
            "total=excluded.total, positions=excluded.positions, cash=excluded.cash, at=excluded.at",
            (point.day.isoformat(), str(point.total_base), str(point.positions_base), str(point.cash_base), at),
        )

    def valuations(self, start: date | None = None, end: date | None = None) -> list[ValuationPoint]:
        rows = self.db.execute(
            "SELECT day, total, positions, cash FROM valuations WHERE day >= ? AND day <= ? ORDER BY day",
            ((start or date.min).isoformat(), (end or date.max).isoformat()),
        )
        return [
            ValuationPoint(day=r[0], total_base=Decimal(r[1]), positions_base=Decimal(r[2]), cash_base=Decimal(r[3]))
            for r in rows
        ]

    def keep_moves(self, broker: str, moves: Iterable[CashMove]) -> int:
        """Keep these movements of `broker`'s account, each once; how many were not kept
        before. A movement that now comes with an id replaces the row its content was kept
        under while it had none."""
        new = 0
        with transaction(self.db) as db:
            for m in moves:
                at = _utc(m.at)
                unnamed = content_key(m)
                keys = (m.id, unnamed) if m.id else (unnamed,)
                kept = db.execute(
                    f"DELETE FROM cash_moves WHERE broker=? AND id IN ({','.join('?' * len(keys))})", (broker, *keys)
                ).rowcount
                new += kept == 0
                db.execute(
                    "INSERT INTO cash_moves VALUES (?,?,?,?,?,?,?,?)",
                    (broker, keys[0], m.kind, str(m.amount), m.currency, at.isoformat(), m.note, m.symbol),
                )
        return new

    def moves(self, broker: str) -> list[CashMove]:
        """Every kept movement of `broker`'s account, oldest first."""
        rows = self.db.execute(
            "SELECT kind, amount, currency, at, note, symbol, id FROM cash_moves WHERE broker=? ORDER BY at, id",
            (broker,),
        )
        return [
            CashMove(r[0], Decimal(r[1]), r[2], datetime.fromisoformat(r[3]), r[4], r[5], _broker_id(r[6]))
            for r in rows
        ]

    def catch_up(self, broker: Broker) -> list[CashMove]:
        """Read the broker's movements since `moves_since`, keep them, and return every kept one."""
        self.keep_moves(broker.name, broker.cash_moves(self.moves_since(broker.name, broker.booking_lag)))
        return self.moves(broker.name)

    def moves_since(self, broker: str, lag: timedelta = OVERLAP) -> datetime | None:
        """Where the next read of `broker`'s movements starts: the newest kept one's time minus
        `lag`; None (from the beginning) when none is kept."""
        row = self.db.execute("SELECT max(at) FROM cash_moves WHERE broker=?", (broker,)).fetchone()
        return datetime.fromisoformat(row[0]) - lag if row and row[0] else None

    def remember(self, key: str, value: str) -> None:
        """Keep the first value written under `key`."""
        self.db.execute("INSERT OR IGNORE INTO settings VALUES (?,?)", (key, value))

    def recalled(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else None
