"""Currency pairs as Tradernet trades them: instruments of its money market, bought and
sold like shares. Pure.

A Freedom24 account keeps cash per currency; a deposit in EUR buys no USD share until
it is exchanged. Tradernet offers the exchange as an order on a pair such as
`EURUSD_T0.ITS` (ITS money market, settled the same day): its price is the quote currency
per unit of the base (USD per EUR), its quantity is in units of the base currency.
Selling the pair turns base into quote (EUR -> USD), buying it turns quote into base. (The
tickers are those the system this project replaces traded with; Tradernet's API pages
list the money market among `getTopSecurities`' exchanges, not its tickers.)

The universe holds a pair as a security whose currency is the pair's quote currency, so
that its quotes and history follow the market clock like any price: the same quotes
value the account's cash (`Rates.quoted`). A pair is never scored, optimised or held:
`investable` says which symbols are securities to own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

PAIR_RE = re.compile(r"^(?P<base>[A-Z]{3})(?P<quote>[A-Z]{3})_T0\.ITS$")


@dataclass(frozen=True)
class Pair:
    symbol: str
    base: str  # what the quantity counts (EUR in EURUSD)
    quote: str  # what the price is in (USD in EURUSD): the pair's trading currency

    def side(self, sell: str, buy: str) -> str:
        """The order's side that turns `sell` currency into `buy` currency."""
        if (sell, buy) == (self.base, self.quote):
            return "sell"
        if (sell, buy) == (self.quote, self.base):
            return "buy"
        raise ValueError(f"{self.symbol} does not exchange {sell} into {buy}")

    def brings(self, side: str) -> str:
        """The currency an order of `side` turns cash into."""
        return self.quote if side == "sell" else self.base

    def moves(self, side: str, quantity: Decimal, price: Decimal, fee: Decimal = Decimal(0)) -> dict[str, Decimal]:
        """What an order does to the cash per currency, its `fee` paid in `quote`."""
        sign = 1 if side == "buy" else -1
        return {self.base: sign * quantity, self.quote: -sign * quantity * price - fee}

    def rates(self, base: str) -> tuple[str, bool] | None:
        """The currency the pair's close values in `base`, and whether one unit of it is
        worth 1 / close (EURUSD in a EUR base: USD, inverted) rather than the close (in a USD
        base: EUR); None when neither side is `base`."""
        if self.quote == base:
            return self.base, False
        if self.base == base:
            return self.quote, True
        return None


def parse(symbol: str) -> Pair | None:
    """The pair a ticker names, or None for any other security."""
    m = PAIR_RE.match(symbol)
    return Pair(symbol, m["base"], m["quote"]) if m else None


def is_pair(symbol: str) -> bool:
    return PAIR_RE.match(symbol) is not None


def investable(symbols: Iterable[str]) -> list[str]:
    """The symbols that are securities to own: every one but the currency pairs."""
    return [s for s in symbols if not is_pair(s)]


def between(sell: str, buy: str, symbols: Iterable[str]) -> Pair | None:
    """The pair among `symbols` (the universe's) that exchanges `sell` into `buy`, if any."""
    for symbol in symbols:
        pair = parse(symbol)
        if pair is not None and {pair.base, pair.quote} == {sell, buy}:
            return pair
    return None
