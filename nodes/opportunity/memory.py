"""What the opportunity node remembers of the orders filled: the last trade of each
security (its side, market day, and the target and score it was made under) and each
market day's traded value. No MQTT; SQLite, so a restart forgets nothing.

Why: a plan must not undo within weeks what it just did (the replay 2010-2024 found 109
trades reversing the same security's trade within three months) unless the reasons moved
(`model.Settings.reversal_*`), and a plan must keep the day's turnover limit, counting what
was traded earlier the same day. Each order is kept once by its client order id: the
events of one order (partly filled, then filled) replace each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from nodes.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS fills (
    client_order_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL, day TEXT NOT NULL,
    value_base TEXT NOT NULL, target TEXT, score REAL, seq INTEGER NOT NULL, limit_day TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fills_symbol ON fills (symbol, day);
CREATE INDEX IF NOT EXISTS fills_limit_day ON fills (limit_day);
"""


@dataclass(frozen=True)
class LastTrade:
    side: str
    day: date
    target: Decimal | None  # the optimiser's target when it was made
    score: float | None


class Memory:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, schema=SCHEMA)

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

    def traded_on(self, limit_day: date) -> Decimal:
        rows = self.db.execute("SELECT value_base FROM fills WHERE limit_day=?", (limit_day.isoformat(),))
        return sum((Decimal(r[0]) for r in rows), Decimal(0))


def _text(x: Decimal | None) -> str | None:
    return None if x is None else str(x)
