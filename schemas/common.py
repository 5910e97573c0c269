"""Types shared by every message: symbols, currencies, exact money, ids and UTC times.

Money and quantities are `Decimal` and travel as JSON strings ("12.50"): a float is
refused at the boundary, because a binary float cannot hold most decimal amounts and
a silently rounded number is the worst bug a money system can have.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

__all__ = [
    "Currency",
    "Id",
    "Message",
    "Money",
    "NodeName",
    "Quantity",
    "Symbol",
    "UtcDateTime",
    "utcnow",
]


class Message(BaseModel):
    """Base of every payload: unknown fields are errors, instances are immutable. A model's
    validator is built on first use (`defer_build`): a node imports the whole catalog but
    uses a few models, and each one built costs memory on a small board."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{0,15}(\.[A-Z0-9]{1,4})?\.[A-Z]{2,4}$")

Symbol = Annotated[
    str,
    StringConstraints(pattern=SYMBOL_RE.pattern, max_length=32),
    Field(description="Tradernet ticker: TICKER.MARKET, e.g. AAPL.US, BRK.B.US", examples=["AAPL.US"]),
]
"""A Tradernet ticker such as `AAPL.US` (upper case, market suffix required)."""

Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 currency code", examples=["EUR", "USD"]),
]

NodeName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$"),
    Field(description="A node's name: lower case, also its MQTT user and topic segment"),
]

Id = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"),
    Field(description="An identifier (message, order, plan, trace)"),
]


def _exact_decimal(value: Any) -> Any:
    """Refuse floats (and bools) before pydantic turns them into an inexact Decimal."""
    if isinstance(value, bool):
        raise ValueError("expected a decimal string, got a boolean")
    if isinstance(value, float):
        raise ValueError(f'expected a decimal string such as "{value!r}", got a JSON float')
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


_DecimalOnTheWire = [
    BeforeValidator(_exact_decimal),
    AfterValidator(_finite),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
]

_DECIMAL_STRING = r"^-?\d+(\.\d+)?$"

Money = Annotated[
    Decimal,
    *_DecimalOnTheWire,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DECIMAL_STRING,
            "examples": ["1250.00"],
            "description": "An exact amount as a decimal string",
        }
    ),
]

Quantity = Annotated[
    Decimal,
    *_DecimalOnTheWire,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DECIMAL_STRING,
            "examples": ["10"],
            "description": "An exact quantity as a decimal string",
        }
    ),
]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDateTime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    Field(description="An ISO 8601 time with its offset; stored and sent as UTC"),
]
"""A timezone-aware time, normalised to UTC. Naive times are refused."""


def utcnow() -> datetime:
    return datetime.now(UTC)
