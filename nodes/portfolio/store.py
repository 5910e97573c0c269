"""The portfolio's SQLite store: the valuation history, one point per UTC day (the latest
of the day wins). Deposits live in the account itself (the broker's side)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from nodes.sqlite import connect
from schemas.portfolio import ValuationPoint

SCHEMA = """
CREATE TABLE IF NOT EXISTS valuations (
    day TEXT PRIMARY KEY, total TEXT NOT NULL, positions TEXT NOT NULL, cash TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


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

    def remember(self, key: str, value: str) -> None:
        """Keep the first value written under `key`."""
        self.db.execute("INSERT OR IGNORE INTO settings VALUES (?,?)", (key, value))

    def recalled(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else None
