"""The market clock as every node reads it: one day for the whole system, published by the
universe node (retained `state/universe/clock`, `schemas.universe.MarketClock`).

Why: the bundled prices end on 2024-11-29, so in paper mode "today" by the wall clock is a
day without prices (valuations were dated 2026 while the prices stopped in 2024), and a
replay moves through history in minutes. The universe decides the day; the others keep its
retained clock (`node.keep`) and ask `today` here.

`EDGE_CLOCK` (every node's environment, one value for the system):

| value    | the market's day                                                          |
| -------- | ------------------------------------------------------------------------- |
| `auto`   | `data` with the bundled provider, `wall` with a network provider (default) |
| `wall`   | today (UTC)                                                               |
| `data`   | the last day of the stored prices                                         |
| `replay` | the day a replay moved it to (`universe/clock`); nodes wait for it        |
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Literal, get_args

from schemas.universe import MarketClock

ClockMode = Literal["auto", "wall", "data", "replay"]
MODES: tuple[ClockMode, ...] = get_args(ClockMode)


def mode(env: Mapping[str, str]) -> ClockMode:
    value = env.get("EDGE_CLOCK", "auto")
    for m in MODES:
        if m == value:
            return m
    raise ValueError(f"EDGE_CLOCK={value!r}: use {', '.join(MODES)}")


def today(kept: MarketClock | None) -> date:
    """The market's day: the kept clock's, unless it follows the wall or none came yet."""
    if kept is None or kept.source == "wall":
        return datetime.now(UTC).date()
    return kept.day


def waits(env: Mapping[str, str], kept: MarketClock | None) -> bool:
    """True while a replay's node has no clock yet: dated work (a deposit) must wait for it,
    or it would be dated by the wall."""
    return kept is None and mode(env) == "replay"


def last_day(kept: MarketClock | None) -> date | None:
    """The day a computation's every fetch ends on (None: whatever the universe serves). One
    day for the whole run: a clock that moves while the run fetches must not mix two days."""
    return None if kept is None or kept.source == "wall" else kept.day


def limit_day(kept: MarketClock | None) -> date:
    """The day whose trading the daily limits add up: a replay's day (its days pass in
    seconds), else today by the wall. A frozen `data` clock must not add weeks of paper
    trading into one day's turnover."""
    if kept is not None and kept.source == "replay":
        return kept.day
    return datetime.now(UTC).date()
