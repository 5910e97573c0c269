"""A small market for the execution board's tests: two securities and their last closes,
published on the universe's retained topics as the universe node would."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from edge import Client
from schemas import catalog as t
from schemas.common import utcnow
from schemas.trading import PlaceOrder
from schemas.universe import MarketClock, Quote, Quotes, Security, Universe

DAY = "2024-11-29"
SECURITIES = [
    Security(symbol="AAPL.US", name="Apple", currency="USD", min_trade=Decimal(200)),
    Security(symbol="MA.US", name="Mastercard", currency="USD"),
]
CLOSES = {"AAPL.US": Decimal("237.33"), "MA.US": Decimal("500")}


async def publish_market(universe: Client) -> None:
    await universe.emit(t.UNIVERSE_SECURITIES, Universe(securities=SECURITIES, at=utcnow()))
    await universe.emit(t.UNIVERSE_CLOCK, MarketClock(day=datetime.now(UTC).date(), source="wall", at=utcnow()))
    await universe.emit(
        t.UNIVERSE_QUOTES,
        Quotes(quotes={s: Quote(symbol=s, day=DAY, close=c, currency="USD") for s, c in CLOSES.items()}, at=utcnow()),
    )


def buy(cid: str = "plan-1:1", qty: str = "10", symbol: str = "AAPL.US", **kw) -> PlaceOrder:
    return PlaceOrder(client_order_id=cid, symbol=symbol, side="buy", quantity=Decimal(qty), currency="USD", **kw)
