"""The limits every order must pass in the trading node, whatever the plan says. Pure:
no MQTT, no broker, no clock of its own (the caller passes `now`), no environment (the
node's settings read it once through `Limits.from_env`).

| limit (environment)              | default   | refuses an order ...                                     |
| -------------------------------- | --------- | -------------------------------------------------------- |
| `TRADING_MAX_ORDER_VALUE`        | 5000      | worth more than this, in the base currency               |
| `TRADING_MAX_DAILY_TURNOVER`     | 20000     | that takes the day's sent value above this (`nodes/clock.py`) |
| `TRADING_MAX_PRICE_DEVIATION`    | 0.05      | whose limit price is further than this from the quote     |
| `TRADING_MAX_FEE_SHARE`          | 0.01      | whose fee is above this share of its value (not worth it) |
| `TRADING_MARKET_HOURS`           | exchange  | outside its exchange's hours (`always`: no check)         |

and always: an unknown or inactive security, a currency other than the security's, a
quantity that is not whole lots, a value under the security's minimum trade, no quote,
a buy without the cash for value + fee, a sell of more than is held. A currency exchange
(an order on a pair, `nodes/money/pairs.py`) is an order like any other: the same limits,
its value in the base currency; selling the pair needs the cash of its base currency (EUR
for `EURUSD_T0.ITS`), buying it the cash of its quote currency for value + fee.

Market hours are the regular session on weekdays (NYSE/Nasdaq 09:30-16:00 New York for
`.US`, Xetra 09:00-17:30 Frankfurt for `.EU`); exchange holidays are not known here, so
an order on a holiday is left to the broker to refuse. Tradernet's money market (`.ITS`)
publishes no hours in its API pages: exchanges are sent 09:00-17:30 Frankfurt on weekdays,
inside the day of every currency market.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from nodes.environment import decimal
from nodes.money.pairs import parse
from schemas.trading import PlaceOrder
from schemas.universe import Security

SESSIONS = {
    "US": (ZoneInfo("America/New_York"), time(9, 30), time(16, 0)),
    "EU": (ZoneInfo("Europe/Berlin"), time(9, 0), time(17, 30)),
    "ITS": (ZoneInfo("Europe/Berlin"), time(9, 0), time(17, 30)),
}


@dataclass(frozen=True)
class Limits:
    max_order_value: Decimal = Decimal(5000)
    max_daily_turnover: Decimal = Decimal(20000)
    max_price_deviation: Decimal = Decimal("0.05")
    max_fee_share: Decimal = Decimal("0.01")
    market_hours: str = "exchange"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, market_hours: str = "exchange") -> Limits:
        """`market_hours` is the default of `TRADING_MARKET_HOURS` (the node's mode decides it)."""
        hours = env.get("TRADING_MARKET_HOURS", market_hours)
        if hours not in ("exchange", "always"):
            raise ValueError(f"TRADING_MARKET_HOURS={hours!r}: use exchange or always")
        return cls(
            decimal(env, "TRADING_MAX_ORDER_VALUE", "5000", above=Decimal(0)),
            decimal(env, "TRADING_MAX_DAILY_TURNOVER", "20000", above=Decimal(0)),
            decimal(env, "TRADING_MAX_PRICE_DEVIATION", "0.05", above=Decimal(0)),
            decimal(env, "TRADING_MAX_FEE_SHARE", "0.01", above=Decimal(0)),
            hours,
        )


@dataclass(frozen=True)
class Situation:
    """What the node knows when an order arrives."""

    security: Security | None
    quote: Decimal | None
    fee: Decimal  # of this order at the reference price, in its currency
    value_base: Decimal  # this order's value in the base currency
    base: str
    turnover_today: Decimal  # in the base currency, before this order
    cash: Decimal  # in the order's currency
    held: Decimal  # shares of this security (of a currency pair: its base currency's cash)
    now: datetime


def market_open(symbol: str, now: datetime) -> str | None:
    """None if `symbol`'s market is in its regular session at `now`, else why not."""
    market = symbol.rsplit(".", 1)[-1]
    if market not in SESSIONS:
        return f"the trading hours of market .{market} are not known (set TRADING_MARKET_HOURS=always to skip)"
    zone, opens, closes = SESSIONS[market]
    local = now.astimezone(zone)
    if local.weekday() >= 5 or not opens <= local.time() < closes:
        return (
            f"the .{market} market is closed at {local:%a %H:%M} {zone.key} "
            f"(open {opens:%H:%M}-{closes:%H:%M} on weekdays)"
        )
    return None


def check(order: PlaceOrder, s: Situation, limits: Limits) -> list[str]:
    """Every reason to refuse `order`; an empty list means it may be sent."""
    sec = s.security
    if sec is None:
        return [f"unknown symbol {order.symbol} (not in the universe)"]
    reasons: list[str] = []
    if not sec.active:
        reasons.append(f"{order.symbol} is inactive in the universe")
    if order.currency != sec.currency:
        reasons.append(f"{order.symbol} trades in {sec.currency}, not {order.currency}")
    if order.quantity % sec.lot_size != 0:
        reasons.append(f"quantity {order.quantity} is not a whole number of lots of {sec.lot_size}")
    if s.quote is None:
        return [*reasons, f"no quote for {order.symbol}: cannot check the price"]
    price = order.limit_price if order.limit_price is not None else s.quote
    value = price * order.quantity
    if order.limit_price is not None:
        deviation = abs(order.limit_price - s.quote) / s.quote
        if deviation > limits.max_price_deviation:
            reasons.append(
                f"limit price {order.limit_price} is {deviation:.1%} from the quote {s.quote} "
                f"(at most {limits.max_price_deviation:.1%})"
            )
    if s.value_base > limits.max_order_value:
        reasons.append(f"order value {s.base} {s.value_base:.2f} is above the maximum of {limits.max_order_value}")
    if s.turnover_today + s.value_base > limits.max_daily_turnover:
        reasons.append(
            f"today's turnover would be {s.base} {s.turnover_today + s.value_base:.2f}, above the "
            f"maximum of {limits.max_daily_turnover}"
        )
    if value < sec.min_trade:
        reasons.append(f"order value {value:.2f} is below {order.symbol}'s minimum trade of {sec.min_trade}")
    if s.fee > value * limits.max_fee_share:
        reasons.append(
            f"the fee {s.fee} is {s.fee / value:.2%} of the order's value (at most "
            f"{limits.max_fee_share:.2%}): not worth it"
        )
    if order.side == "buy" and s.cash < value + s.fee:
        reasons.append(f"not enough cash: {order.currency} {value + s.fee:.2f} needed, {s.cash:.2f} available")
    if order.side == "sell" and s.held < order.quantity:
        pair = parse(order.symbol)
        what = f"{pair.base} cash" if pair else "held"
        reasons.append(f"cannot sell {order.quantity} {order.symbol}: {s.held} {what}")
    if limits.market_hours == "exchange" and (closed := market_open(order.symbol, s.now)):
        reasons.append(closed)
    return reasons
