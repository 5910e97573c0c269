"""Numbers and times as every page writes them for a person: one place, so that money reads
the same everywhere ('EUR 12,345.67')."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal


def money(amount: Decimal | float | None, currency: str | None, places: int = 2, *, sign: bool = False) -> str:
    """'EUR 12,345.67', 'EUR -12.30' ('EUR +12.30' with `sign`: a change); '-' for none."""
    if amount is None or (isinstance(amount, float) and not math.isfinite(amount)):
        return "-"
    text = f"{abs(amount):,.{places}f}"
    nonzero = bool(text.strip("0.,"))
    mark = "-" if amount < 0 and nonzero else "+" if sign and nonzero else ""
    return f"{currency or ''} {mark}{text}".strip()


def percent(share: float | None, places: int = 2, *, sign: bool = False) -> str:
    """0.01234 -> '1.23 %' ('+1.23 %' with `sign`); '-' for none."""
    if share is None or not math.isfinite(share):
        return "-"
    return f"{share * 100:{'+' if sign else ''},.{places}f} %"


def quantity(q: Decimal) -> str:
    """Shares without a trailing '.000': '12', '0.5', '1,200'."""
    return f"{q.normalize():,f}"


def day(d: date | datetime | None) -> str:
    """'2026-01-15' (a time: '2026-01-15 14:03 UTC')."""
    if d is None:
        return "-"
    if isinstance(d, datetime):
        return f"{d:%Y-%m-%d %H:%M} UTC"
    return d.isoformat()


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
