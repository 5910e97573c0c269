"""Currency exchanges a cycle's buys need: cash in the wrong currency is idle cash too.
Pure, no MQTT.

A Freedom24 account keeps cash per currency: EUR deposited buys no USD share. Before the
search, for each currency the candidate buys need more of than the account holds (each
security's largest buy, with its fee and the generator's price margin), the cash of other
currencies that their own buys do not need (the base currency keeps the cash reserve) is
exchanged through the universe's pair between the two (`nodes/money/pairs.py`), as much
as the shortfall asks, in whole lots of the pair, each order within the trading limit.
The exchanges are orders like any other: the planner sends them first, trading's limits
check them, the broker fills them with a fee and a spread.

What needs no exchange gets none: no pair in the universe, no quote for it, or a shortfall
smaller than one order worth its fee leaves a note instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_UP, Decimal

from nodes.generator.searchspace import PRICE_MARGIN
from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates
from nodes.money.pairs import Pair, between
from schemas.planning import Action

from .model import CENT, Listing, Settings


def _units(amount: Decimal, lot: Decimal, rounding: str) -> Decimal:
    return (amount / lot).to_integral_value(rounding) * lot


def needs(buys: list[Action], margin: Decimal = PRICE_MARGIN) -> dict[str, Decimal]:
    """Per currency, what the largest buy of each security would spend with its fee."""
    largest: dict[str, Action] = {}
    for a in buys:
        if a.side == "buy" and (a.symbol not in largest or a.value > largest[a.symbol].value):
            largest[a.symbol] = a
    need: dict[str, Decimal] = {}
    for a in largest.values():
        need[a.currency] = need.get(a.currency, Decimal(0)) + a.value * (1 + margin) + a.fee
    return need


def exchanges(
    actions: list[Action],
    cash: Mapping[str, Decimal],
    listings: Mapping[str, Listing],
    quotes: Mapping[str, Decimal],
    fees: FeeSchedule,
    fx: Rates,
    s: Settings,
    reserve_base: Decimal = Decimal(0),
    budget_base: Decimal | None = None,
) -> tuple[list[Action], list[str]]:
    """The exchange orders that fund `actions`' buys from the cash their currencies lack,
    and notes on what could not be funded. `reserve_base`: the cash reserve, kept in the
    base currency; `budget_base`: the most the exchanges may trade in all (the day's
    turnover left to them: trading's daily limit counts an exchange as any order)."""
    need = needs(actions)
    spare = {c: a - need.get(c, Decimal(0)) for c, a in cash.items()}
    if fx.base in spare:
        spare[fx.base] -= reserve_base
    pairs = [sym for sym, lst in listings.items() if lst.active]
    orders: list[Action] = []
    notes: list[str] = []
    for want in sorted(c for c in need if need[c] > cash.get(c, Decimal(0))):
        short = need[want] - cash.get(want, Decimal(0))
        for have in sorted((c for c in spare if c != want and spare[c] > 0), key=lambda c: (c != fx.base, c)):
            pair = between(have, want, pairs)
            if pair is None:
                notes.append(f"{want}: buys need {short:.2f} more; no pair in the universe exchanges {have} into it")
                continue
            if pair.symbol not in quotes:
                notes.append(f"{want}: buys need {short:.2f} more; {pair.symbol} has no quote: no exchange")
                continue
            listing, price = listings[pair.symbol], quotes[pair.symbol]
            room = None if budget_base is None else budget_base - sum((a.value_base for a in orders), Decimal(0))
            made = _orders(pair, have, want, short, spare[have], listing, price, fees, fx, s, room)
            for a in made:
                moved = pair.moves(a.side, a.quantity, a.price, a.fee)
                spare[have] += moved[have]
                short -= moved[want]
            orders += made
            if short <= 0:
                break
    return orders, notes


def _orders(
    pair: Pair,
    have: str,
    want: str,
    short: Decimal,
    spare: Decimal,
    listing: Listing,
    price: Decimal,
    fees: FeeSchedule,
    fx: Rates,
    s: Settings,
    room: Decimal | None = None,
) -> list[Action]:
    """Orders on `pair` that bring `short` of `want` from at most `spare` of `have`, each at
    most the trading limit's value and all at most `room` (base), in whole lots of the pair
    (its quantity: base units)."""
    lot = listing.lot_size
    worse = 1 + fees.fx_rate + PRICE_MARGIN  # the fee and a fill worse than the quote
    side = pair.side(have, want)
    if side == "sell":  # quantity of `have` (the base) that brings `short` of the quote
        total = min(_units(short / price * worse, lot, ROUND_UP), _units(spare, lot, ROUND_DOWN))
    else:  # quantity of `want` (the base), paid in `have` (the quote)
        total = min(_units(short, lot, ROUND_UP), _units(spare / price / worse, lot, ROUND_DOWN))
    most = _units(s.largest_order / fx.rate(pair.quote) / price, lot, ROUND_DOWN)  # the order limit, base units
    if room is not None:
        total = min(total, _units(max(room, Decimal(0)) / fx.rate(pair.quote) / price, lot, ROUND_DOWN))
    out: list[Action] = []
    while total > 0 and most > 0:
        qty = min(total, most)
        value = qty * price
        fee = fees.fee(value, pair.quote, fx, pair.symbol)
        if value < listing.min_trade or fee > value * s.max_fee_share:
            break
        out.append(
            Action(
                kind="exchange",
                symbol=pair.symbol,
                side=side,  # type: ignore[arg-type]
                quantity=qty,
                price=price,
                currency=pair.quote,
                value=value.quantize(CENT),
                fee=fee,
                value_base=fx.to_base(value, pair.quote).quantize(CENT),
                reason=f"exchange {have} into {want}: the buys need {want} {short:.2f} more than the account holds",
            )
        )
        total -= qty
    return out
