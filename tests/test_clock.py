"""The market clock as the nodes read it (`nodes/clock.py`): which day a deposit, a valuation
and a reversal belong to, and which day's turnover the daily limits add up."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from nodes import clock
from nodes.opportunity.memory import Memory
from schemas.common import utcnow
from schemas.universe import MarketClock

LAST = date(2024, 11, 29)


def kept(source: str) -> MarketClock:
    return MarketClock(day=LAST, source=source, at=utcnow())  # type: ignore[arg-type]


def test_the_market_s_day_and_the_limits_day():
    today = datetime.now(UTC).date()
    assert clock.today(None) == today and clock.today(kept("wall")) == today
    assert clock.today(kept("data")) == clock.today(kept("replay")) == LAST
    # a replay's days pass in seconds: its limits count its day; a frozen data clock must not
    # add weeks of paper trading into one day's turnover
    assert clock.limit_day(kept("replay")) == LAST
    assert clock.limit_day(kept("data")) == clock.limit_day(kept("wall")) == clock.limit_day(None) == today
    assert clock.last_day(kept("data")) == LAST and clock.last_day(kept("wall")) is None


def test_the_mode_and_waiting_for_a_replay_s_clock():
    assert clock.mode({}) == "auto" and clock.mode({"EDGE_CLOCK": "replay"}) == "replay"
    with pytest.raises(ValueError, match="EDGE_CLOCK"):
        clock.mode({"EDGE_CLOCK": "tomorrow"})
    assert clock.waits({"EDGE_CLOCK": "replay"}, None)
    assert not clock.waits({"EDGE_CLOCK": "replay"}, kept("replay")) and not clock.waits({}, None)


def test_the_opportunity_s_memory_counts_turnover_by_the_limits_day(tmp_path):
    m = Memory(tmp_path / "o.sqlite")
    today = datetime.now(UTC).date()
    at = datetime(2026, 1, 2, 10, tzinfo=UTC)
    m.counted("plan-1:1", today, Decimal(1000), at)
    m.counted("plan-1:1", today, Decimal(1500), at.replace(minute=1))  # its next word replaces it
    m.counted("plan-1:1", today, Decimal(0), at)  # a late word, older than the one kept: ignored
    m.counted("plan-2:1", date(2026, 1, 2), Decimal(400), at)
    assert m.traded_on(today) == Decimal(1500) and m.traded_on(date(2026, 1, 2)) == Decimal(400)
    m.filled("plan-1:1", "A.US", "buy", LAST, Decimal(1500), Decimal("0.1"), 70.0, today)
    m.filled("plan-2:1", "B.US", "sell", LAST, Decimal(400), None, None, date(2026, 1, 2))
    last = m.last_trades()
    assert last["A.US"].side == "buy" and last["A.US"].day == LAST and last["B.US"].target is None
    m.close()
    again = Memory(tmp_path / "o.sqlite")  # a restart forgets nothing
    assert again.traded_on(today) == Decimal(1500) and again.last_trades() == last
    again.close()


def test_a_memory_of_an_older_release_counts_its_fills(tmp_path):
    """Before the turnover table the fills were the count: an upgrade in the middle of a
    day must not forget what that day traded."""
    path = tmp_path / "o.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE fills (client_order_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL, "
        "day TEXT NOT NULL, value_base TEXT NOT NULL, target TEXT, score REAL, seq INTEGER NOT NULL, "
        "limit_day TEXT NOT NULL);"
        "INSERT INTO fills VALUES ('plan-1:1', 'A.US', 'buy', '2024-11-29', '1200.5', '0.1', 70, 1, '2026-11-27');"
    )
    old.commit()
    old.close()
    m = Memory(path)
    assert m.traded_on(date(2026, 11, 27)) == Decimal("1200.5") and m.last_trades()["A.US"].side == "buy"
    m.close()
