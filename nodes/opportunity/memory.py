"""What the opportunity node remembers of the orders: the last trade of each security (its
side, market day, and the target and score it was made under) and each day's turnover as
trading's daily limit counts it. No MQTT; SQLite, so a restart forgets nothing.

Why: a plan must not undo within weeks what it just did (the replay 2010-2024 found 109
trades reversing the same security's trade within three months) unless the reasons moved
(`model.Settings.reversal_*`), and a plan must keep the day's turnover limit, counting what
was sent earlier the same day exactly as trading's limit counts it (each order's value when
accepted, open or filled, `schemas.trading.counts_in_turnover`): counted at fill prices, or
without the orders still open, a plan sized to the limit had its last order denied. Each
order is kept once by its client order id: the events of one order replace each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from nodes.sqlite import connect
from schemas.trading import Order, counts_in_turnover

SCHEMA = """
CREATE TABLE IF NOT EXISTS fills (
    client_order_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL, day TEXT NOT NULL,
    value_base TEXT NOT NULL, target TEXT, score REAL, seq INTEGER NOT NULL, limit_day TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fills_symbol ON fills (symbol, day);
CREATE TABLE IF NOT EXISTS turnover (
    client_order_id TEXT PRIMARY KEY, limit_day TEXT NOT NULL, value_base TEXT NOT NULL, updated TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS turnover_limit_day ON turnover (limit_day);
"""


@dataclass(frozen=True)
class LastTrade:
    side: str
    day: date
    target: Decimal | None  # the optimiser's target when it was made
    score: float | None


class Memory:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path)
        fresh = not self.db.execute("SELECT 1 FROM sqlite_master WHERE name='turnover'").fetchone()
        self.db.executescript(SCHEMA)
        if fresh:  # a memory from before the turnover table: its fills are what it counted
            self.db.execute("INSERT INTO turnover SELECT client_order_id, limit_day, value_base, '' FROM fills")

    def close(self) -> None:
        self.db.close()

    def filled(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        day: date,
        value_base: Decimal,
        target: Decimal | None,
        score: float | None,
        limit_day: date,
    ) -> None:
        """Keep (or update) one order's fill; the first day it was seen filled stays its day.
        `day`: the market's (for the reversal guard); `limit_day`: the day whose turnover it
        counts in (`nodes.clock.limit_day`)."""
        seq = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM fills").fetchone()[0]
        self.db.execute(
            "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(client_order_id) DO UPDATE SET "
            "value_base=excluded.value_base",
            (
                client_order_id,
                symbol,
                side,
                day.isoformat(),
                str(value_base),
                _text(target),
                score,
                seq,
                limit_day.isoformat(),
            ),
        )

    def last_trades(self) -> dict[str, LastTrade]:
        """Each security's latest trade."""
        rows = self.db.execute(
            "SELECT symbol, side, day, target, score FROM fills f WHERE seq = "
            "(SELECT MAX(seq) FROM fills g WHERE g.symbol = f.symbol)"
        )
        return {
            r[0]: LastTrade(r[1], date.fromisoformat(r[2]), None if r[3] is None else Decimal(r[3]), r[4]) for r in rows
        }

    def heard(self, order: Order) -> bool:
        """Keep what trading's daily limit counts of `order` now (0 once it ended unfilled);
        False when the order does not say (a trading node of an older release)."""
        if order.value_base is None or order.market_day is None:
            return False
        value = order.value_base if counts_in_turnover(order.status, order.filled_quantity) else Decimal(0)
        self.counted(order.client_order_id, order.market_day, value, order.updated)
        return True

    def counted(self, client_order_id: str, limit_day: date, value_base: Decimal, updated: datetime) -> None:
        """Keep what the daily limit counts of one order; a word older than the one kept
        (events may come late or twice) changes nothing."""
        self.db.execute(
            "INSERT INTO turnover VALUES (?,?,?,?) ON CONFLICT(client_order_id) DO UPDATE SET "
            "limit_day=excluded.limit_day, value_base=excluded.value_base, updated=excluded.updated "
            "WHERE excluded.updated >= turnover.updated",
            (client_order_id, limit_day.isoformat(), str(value_base), updated.isoformat()),
        )

    def traded_on(self, limit_day: date) -> Decimal:
        """The day's turnover as trading's limit counts it, from the orders heard of."""
        rows = self.db.execute("SELECT value_base FROM turnover WHERE limit_day=?", (limit_day.isoformat(),))
        return sum((Decimal(r[0]) for r in rows), Decimal(0))


def _text(x: Decimal | None) -> str | None:
    return None if x is None else str(x)
