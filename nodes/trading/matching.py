"""Which of the broker's listed orders is ours: pure, no broker, no clock but the times given.

Evidence is only taken from an order that is ours beyond doubt, because adopting another
order's fill is a silently wrong number: an outbox reset, another installation, or the
operator's own app may have placed orders with the same id, symbol or size.

1. An order the broker already gave an id to is that listed order, if its symbol, side and
   quantity agree (else: a contradiction, reported, nothing taken).
2. Else a listed order carrying our broker id (in any of the forms the lists use), with the
   same symbol, side and quantity, placed no earlier than `EARLY` before we sent it.
3. Else, where the broker's lists carry no client ids at all, exactly one listed order
   without an id, not claimed by another outbox order, with the same symbol, side and
   quantity, placed within [sent - EARLY, sent + `window`]. Two or more: ambiguous.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from nodes.brokers.base import Sighting

EARLY = timedelta(minutes=15)  # the broker's clock and ours may differ; its zone is not documented


@dataclass(frozen=True)
class Mine:
    """What the outbox knows of one order that the broker may have."""

    broker_ref: int | None
    broker_order_id: str | None
    symbol: str
    side: str
    quantity: Decimal
    sent_at: datetime


@dataclass(frozen=True)
class Match:
    sighting: Sighting | None  # None: not found (or not beyond doubt)
    problem: str = ""  # why nothing was taken although something was listed


def _same_order(mine: Mine, s: Sighting) -> bool:
    return s.symbol == mine.symbol and s.side == mine.side and s.quantity == mine.quantity


def _in_time(mine: Mine, s: Sighting, window: timedelta | None) -> bool:
    if s.placed_at is None:
        return window is None  # an id match without a time is still ours; a guess without one is not
    if s.placed_at < mine.sent_at - EARLY:
        return False
    return window is None or s.placed_at <= mine.sent_at + window


def match(mine: Mine, listed: Iterable[Sighting], claimed: set[str], window: timedelta) -> Match:
    """The listed order that is `mine`; `claimed`: broker order ids other outbox orders own."""
    listed = list(listed)
    if mine.broker_order_id is not None:
        for s in listed:
            if s.broker_order_id == mine.broker_order_id:
                if _same_order(mine, s):
                    return Match(s)
                return Match(
                    None, f"broker order {s.broker_order_id} is {s.side} {s.quantity} {s.symbol} at the broker"
                )
        return Match(None)
    by_id = [s for s in listed if mine.broker_ref is not None and s.broker_ref == mine.broker_ref]
    ours = [s for s in by_id if _same_order(mine, s) and _in_time(mine, s, None) and s.broker_order_id not in claimed]
    if len(ours) == 1:
        return Match(ours[0])
    if len(ours) > 1:
        ids = ", ".join(s.broker_order_id for s in ours)
        return Match(None, f"the broker lists {len(ours)} orders under id {mine.broker_ref}: {ids}")
    if by_id:
        s = by_id[0]
        return Match(
            None,
            f"broker order {s.broker_order_id} carries id {mine.broker_ref} but is {s.side} {s.quantity} {s.symbol}"
            f"{'' if s.placed_at is None else f' placed {s.placed_at:%Y-%m-%d %H:%M} UTC'}: not this order",
        )
    anonymous = [
        s
        for s in listed
        if s.broker_ref is None
        and s.broker_order_id not in claimed
        and _same_order(mine, s)
        and _in_time(mine, s, window)
    ]
    if len(anonymous) == 1:
        return Match(anonymous[0])
    if len(anonymous) > 1:
        ids = ", ".join(s.broker_order_id for s in anonymous)
        return Match(None, f"{len(anonymous)} orders without client ids could be this one ({ids}): not guessing")
    return Match(None)
