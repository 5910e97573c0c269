"""The day's turnover as the planner counts it (the opportunity node's memory, from trading's
order events) and as trading's daily limit counts it (the outbox) agree to the cent, whatever
the orders' lives: open, partly filled, filled at a worse price than their quote, cancelled,
rejected, denied, words heard twice or late. When they did not (fills counted at their price,
open orders not at all), a plan sized to the turnover left had its last order denied."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.opportunity.memory import Memory
from nodes.trading.lifecycle import Cause, Event, InvalidTransition
from nodes.trading.outbox import Outbox
from schemas.trading import Order, PlaceOrder

D = Decimal
DAY = date(2026, 11, 27)
START = datetime(2026, 11, 27, 15, tzinfo=UTC)
QUANTITY = D(10)

orders = st.lists(st.decimals(min_value=D(1), max_value=D(5000), places=2), min_size=1, max_size=4)
events = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(list(Cause)),
        st.integers(0, int(QUANTITY)),  # the quantity filled so far, as the broker says
        st.decimals(min_value=D("0.5"), max_value=D(600), places=2),  # the fill's average price
        st.booleans(),  # the word is heard twice, the second time after the next one
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(values=orders, lives=events)
def test_the_planner_counts_the_days_turnover_as_the_limit_does(values: list[Decimal], lives) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outbox, memory = Outbox(Path(tmp) / "trading.sqlite"), Memory(Path(tmp) / "opportunity.sqlite")
        try:
            refs = []
            for i, value in enumerate(values):
                req = PlaceOrder(
                    client_order_id=f"plan-1:{i}", symbol="AAPL.US", side="sell", quantity=QUANTITY, currency="USD"
                )
                order = outbox.create(req, "paper", value / QUANTITY, value, now=START, market_day=DAY)
                memory.heard(order)
                refs.append(order.ref)
            late: list[Order] = []
            for step, (index, cause, filled, price, twice) in enumerate(lives):
                at = START + timedelta(seconds=step + 1)
                event = Event(cause, at, "test", filled=D(filled), average_price=price if filled else None)
                try:
                    order = outbox.apply(refs[index % len(refs)], event)
                except InvalidTransition:
                    continue
                memory.heard(order)
                for word in late:  # a word heard again after a newer one changes nothing
                    memory.heard(word)
                late = [order] if twice else []
                assert memory.traded_on(DAY) == outbox.turnover_on(DAY), outbox.list()
            assert memory.traded_on(DAY + timedelta(days=1)) == outbox.turnover_on(DAY + timedelta(days=1)) == 0
        finally:
            outbox.close()
            memory.close()


def test_what_counts_by_status() -> None:
    """Open or filled: the whole value; ended without a fill, or never sent: nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        outbox, memory = Outbox(Path(tmp) / "trading.sqlite"), Memory(Path(tmp) / "opportunity.sqlite")
        lives = {
            "open": [Cause.SEND, Cause.ACCEPT],
            "unknown": [Cause.SEND, Cause.NO_ANSWER],
            "part_cancelled": [Cause.SEND, Cause.PART_FILL, Cause.CANCEL],
            "filled": [Cause.SEND, Cause.FILL],
            "rejected": [Cause.SEND, Cause.REJECT],
            "expired": [Cause.SEND, Cause.ACCEPT, Cause.EXPIRE],
            "denied": [Cause.DENY],
            "new": [],
        }
        for n, (name, causes) in enumerate(lives.items()):
            req = PlaceOrder(client_order_id=name, symbol="MA.US", side="buy", quantity=QUANTITY, currency="USD")
            order = outbox.create(req, "paper", D(100), D(1000) + n, now=START, market_day=DAY)
            for k, cause in enumerate(causes):
                filled = {Cause.PART_FILL: D(4), Cause.FILL: QUANTITY}.get(cause)
                event = Event(cause, START + timedelta(seconds=k), "test", filled=filled, average_price=D("100.1"))
                order = outbox.apply(order.ref, event)
            memory.heard(order)
        # open 1000, unknown 1001, part_cancelled 1002, filled 1003: at their value when accepted
        assert outbox.turnover_on(DAY) == memory.traded_on(DAY) == D(4006)
        outbox.close()
        memory.close()
