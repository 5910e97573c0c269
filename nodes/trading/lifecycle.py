"""An order's life as data: one transition table and one function that applies an event
(nautilus_trader's `_ORDER_STATE_TABLE` and `Order.apply` are the model). Pure: no MQTT,
no broker, no clock but the times events carry.

    new ──deny──▶ denied                                  (our limits: never sent)
     │
    send (written before the request leaves)
     ▼
    sending ──no answer──▶ unknown ──resend──▶ sending     (operator, after the settle window)
     │                        │  └──abandon──▶ abandoned    (operator)
     │  evidence from the broker (an answer, its lists, its history), from sending or unknown:
     ├──accept──▶ accepted ──part fill──▶ partially_filled
     ├──fill──▶ filled                       │
     ├──cancel──▶ cancelled  ◀───────────────┤ (with or without fills)
     ├──expire──▶ expired    ◀───────────────┤
     └──reject──▶ rejected                   └──fill──▶ filled

An order that reached `sending` is never sent again by itself: only evidence from the
broker or an operator's `resend` moves an `unknown` order. Finished states never change.
Fills only grow. Every transition is kept with its time, cause, who said so and a note.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from schemas import trading


class State(enum.StrEnum):
    NEW = "new"
    SENDING = "sending"
    UNKNOWN = "unknown"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"  # by the broker, with its text
    DENIED = "denied"  # by our limits, never sent
    ABANDONED = "abandoned"  # an unknown order an operator gave up on


class Cause(enum.StrEnum):
    DENY = "deny"
    SEND = "send"
    NO_ANSWER = "no_answer"  # a timeout, a dropped connection, a crash: the broker may have it
    ACCEPT = "accept"
    PART_FILL = "part_fill"
    FILL = "fill"
    CANCEL = "cancel"
    EXPIRE = "expire"
    REJECT = "reject"
    RESEND = "resend"  # an operator's decision, after the settle window found nothing
    ABANDON = "abandon"  # likewise


FINISHED = frozenset(State(s) for s in trading.FINISHED)  # the message schema's sets, as states
OPEN = frozenset(State(s) for s in trading.OPEN)
EVIDENCE = (Cause.ACCEPT, Cause.PART_FILL, Cause.FILL, Cause.CANCEL, Cause.EXPIRE, Cause.REJECT)
_OUTCOME = {
    Cause.ACCEPT: State.ACCEPTED,
    Cause.PART_FILL: State.PARTIALLY_FILLED,
    Cause.FILL: State.FILLED,
    Cause.CANCEL: State.CANCELLED,
    Cause.EXPIRE: State.EXPIRED,
    Cause.REJECT: State.REJECTED,
}


def _table() -> dict[tuple[State, Cause], State]:
    table = {
        (State.NEW, Cause.DENY): State.DENIED,
        (State.NEW, Cause.SEND): State.SENDING,
        (State.SENDING, Cause.NO_ANSWER): State.UNKNOWN,
        (State.UNKNOWN, Cause.NO_ANSWER): State.UNKNOWN,  # polled again, still no evidence
        (State.UNKNOWN, Cause.RESEND): State.SENDING,
        (State.UNKNOWN, Cause.ABANDON): State.ABANDONED,
    }
    for source in (State.SENDING, State.UNKNOWN, State.ACCEPTED):
        for cause in EVIDENCE:
            table[(source, cause)] = _OUTCOME[cause]
    for cause in (Cause.PART_FILL, Cause.FILL, Cause.CANCEL, Cause.EXPIRE):  # a part is filled: no rejection
        table[(State.PARTIALLY_FILLED, cause)] = _OUTCOME[cause]
    table[(State.PARTIALLY_FILLED, Cause.ACCEPT)] = State.PARTIALLY_FILLED  # seen again in the lists
    return table


TRANSITIONS: dict[tuple[State, Cause], State] = _table()


class InvalidTransition(ValueError):
    """An event the order's state does not allow: a bug, or a broker contradicting itself."""


@dataclass(frozen=True)
class Event:
    cause: Cause
    at: datetime
    by: str  # who said so: "limits", "trading", "broker", "poll", an operator's name
    note: str = ""
    filled: Decimal | None = None  # the quantity filled so far, as the broker reports it
    average_price: Decimal | None = None


@dataclass(frozen=True)
class Transition:
    before: State
    after: State
    event: Event


@dataclass(frozen=True)
class Life:
    """An order's state, its fills and the history that led there."""

    state: State = State.NEW
    filled: Decimal = Decimal(0)
    average_price: Decimal | None = None
    history: tuple[Transition, ...] = field(default=())

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def apply(self, event: Event) -> Life:
        """The one mutator: the next life, or `InvalidTransition` with the reason."""
        after = TRANSITIONS.get((self.state, event.cause))
        if after is None:
            raise InvalidTransition(f"an order that is {self.state} cannot {event.cause} ({event.by}: {event.note})")
        filled, average = self.filled, self.average_price
        if event.filled is not None:
            if event.filled < self.filled:
                raise InvalidTransition(f"fills only grow: {event.filled} reported after {self.filled} ({event.by})")
            filled, average = event.filled, event.average_price if event.average_price is not None else average
        if after is State.FILLED and filled <= 0:
            raise InvalidTransition(f"filled without a filled quantity ({event.by})")
        if after is State.PARTIALLY_FILLED and filled <= 0:
            raise InvalidTransition(f"partly filled without a filled quantity ({event.by})")
        return replace(
            self,
            state=after,
            filled=filled,
            average_price=average,
            history=(*self.history, Transition(self.state, after, event)),
        )
