"""The market clock as the nodes read it (`nodes/clock.py`): which day a deposit, a valuation
and a reversal belong to, and which day's turnover the daily limits add up."""

from __future__ import annotations

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
    m.filled("plan-1:1", "A.US", "buy", LAST, Decimal(1000), Decimal("0.1"), 70.0, today)
    m.filled("plan-1:1", "A.US", "buy", LAST, Decimal(1500), Decimal("0.1"), 70.0, today)  # more of it filled
    m.filled("plan-2:1", "B.US", "sell", LAST, Decimal(400), None, None, date(2026, 1, 2))
    assert m.traded_on(today) == Decimal(1500) and m.traded_on(date(2026, 1, 2)) == Decimal(400)
    last = m.last_trades()
    assert last["A.US"].side == "buy" and last["A.US"].day == LAST and last["B.US"].target is None
    m.close()
    again = Memory(tmp_path / "o.sqlite")  # a restart forgets nothing
    assert again.traded_on(today) == Decimal(1500)
    again.close()
