"""Every message as a pydantic model, and the topic catalog. Imports pydantic only.

`CATALOG` is loaded on first use: a node imports only the schemas it needs, and the
catalog brings every domain's models with it."""

from typing import Any

from .common import Currency, Id, Message, Money, NodeName, Quantity, Symbol, UtcDateTime, utcnow
from .topics import Catalog, Command, Event, State, Topic, Topics, Work

__all__ = [
    "CATALOG",
    "Catalog",
    "Command",
    "Currency",
    "Event",
    "Id",
    "Message",
    "Money",
    "NodeName",
    "Quantity",
    "State",
    "Symbol",
    "Topic",
    "Topics",
    "UtcDateTime",
    "Work",
    "utcnow",
]


def __getattr__(name: str) -> Any:
    if name == "CATALOG":
        from .catalog import CATALOG

        return CATALOG
    raise AttributeError(f"module 'schemas' has no attribute {name!r}")
