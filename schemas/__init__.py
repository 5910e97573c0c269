"""Every message as a pydantic model, and the topic catalog. Imports pydantic only."""

from .catalog import CATALOG
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
