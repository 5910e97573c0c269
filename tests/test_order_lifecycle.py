"""The order state machine (nodes/trading/lifecycle.py): the table's promises, checked by
hand and over arbitrary event sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes.trading.lifecycle import FINISHED, OPEN, TRANSITIONS, Cause, Event, InvalidTransition, Life, State
from schemas.trading import OrderStatus

T0 = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


def ev(cause: Cause, by: str = "broker", filled: str | None = None, price: str | None = None) -> Event:
    return Event(
        cause, T0, by, filled=Decimal(filled) if filled else None, average_price=Decimal(price) if price else None
    )


def test_a_sent_order_fills_in_parts_and_keeps_its_history():
    life = Life()
    for event in (
        ev(Cause.SEND, "trading"),
        ev(Cause.ACCEPT),
        ev(Cause.PART_FILL, filled="3", price="10.5"),
        ev(Cause.FILL, filled="5", price="10.6"),
    ):
        life = life.apply(event)
    assert life.state is State.FILLED and life.filled == Decimal(5) and life.average_price == Decimal("10.6")
    assert [t.after for t in life.history] == [State.SENDING, State.ACCEPTED, State.PARTIALLY_FILLED, State.FILLED]


def test_no_answer_leaves_the_order_unknown_and_only_evidence_or_an_operator_moves_it():
    unknown = Life().apply(ev(Cause.SEND, "trading")).apply(ev(Cause.NO_ANSWER, "trading"))
    assert unknown.state is State.UNKNOWN
    with pytest.raises(InvalidTransition):
        unknown.apply(ev(Cause.SEND, "trading"))  # never sent again by itself
    assert unknown.apply(ev(Cause.NO_ANSWER, "poll")).state is State.UNKNOWN
    assert unknown.apply(ev(Cause.FILL, "poll", filled="1")).state is State.FILLED  # found in the lists
    assert unknown.apply(ev(Cause.RESEND, "operator alice")).state is State.SENDING
    assert unknown.apply(ev(Cause.ABANDON, "operator alice")).state is State.ABANDONED


def test_denied_orders_were_never_sent_and_rejections_are_final():
    assert Life().apply(ev(Cause.DENY, "limits")).state is State.DENIED
    rejected = Life().apply(ev(Cause.SEND, "trading")).apply(ev(Cause.REJECT))
    for cause in Cause:
        with pytest.raises(InvalidTransition):
            rejected.apply(ev(cause, filled="1"))


def test_a_partly_filled_order_cannot_be_rejected_and_fills_only_grow():
    part = Life().apply(ev(Cause.SEND)).apply(ev(Cause.PART_FILL, filled="2"))
    with pytest.raises(InvalidTransition):
        part.apply(ev(Cause.REJECT))
    with pytest.raises(InvalidTransition, match="fills only grow"):
        part.apply(ev(Cause.PART_FILL, filled="1"))
    cancelled = part.apply(ev(Cause.CANCEL, filled="2"))
    assert cancelled.state is State.CANCELLED and cancelled.filled == Decimal(2)


@given(st.lists(st.tuples(st.sampled_from(list(Cause)), st.integers(0, 5)), max_size=25))
def test_any_sequence_of_events_keeps_the_promises(events):
    life, sent = Life(), 0
    for i, (cause, qty) in enumerate(events):
        event = Event(cause, T0 + timedelta(seconds=i), "x", filled=Decimal(qty))
        try:
            after = life.apply(event)
        except InvalidTransition:
            assert (life.state, cause) not in TRANSITIONS or Decimal(qty) < life.filled or qty == 0
            continue
        assert life.state not in FINISHED, "a finished order never changes"
        assert after.filled >= life.filled, "fills only grow"
        assert (life.state, cause) in TRANSITIONS and after.state is TRANSITIONS[(life.state, cause)]
        sent += after.state is State.SENDING and life.state is not State.SENDING
        life = after
    resends = sum(1 for t in life.history if t.event.cause is Cause.RESEND)
    assert sent == sum(1 for t in life.history if t.after is State.SENDING) <= 1 + resends


def test_the_states_are_the_message_schemas_statuses():
    assert {s.value for s in State} == set(get_args(OrderStatus))
    assert frozenset(State) - FINISHED - {State.NEW} == OPEN  # every state is new, open or finished
