"""Valuing an account: pure, no MQTT, no broker. Every amount stays a Decimal."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from nodes.brokers.base import Account
from nodes.money.fx import Rates
from schemas.portfolio import CashBalance, Holding, Summary

CENT = Decimal("0.01")
WEIGHT = Decimal("0.000001")


def _cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, ROUND_HALF_UP)


def summarise(
    account: Account,
    quotes: dict[str, Decimal],
    fx: Rates,
    *,
    mode: str,
    broker: str,
    deposits_base: Decimal,
    dividends_base: Decimal,
    at: datetime,
) -> Summary:
    """Positions at their latest close and cash, in their currencies and in the base one.
    A position without a quote is `unpriced`: listed, left out of the totals."""
    holdings: list[tuple[Holding, Decimal | None]] = []
    unpriced: list[str] = []
    for symbol, p in sorted(account.positions.items()):
        price = quotes.get(symbol)
        if price is None:
            unpriced.append(symbol)
            holdings.append(
                (Holding(symbol=symbol, quantity=p.quantity, average_price=p.average_price, currency=p.currency), None)
            )
            continue
        value = p.quantity * price
        value_base = fx.to_base(value, p.currency)
        holdings.append(
            (
                Holding(
                    symbol=symbol,
                    quantity=p.quantity,
                    average_price=p.average_price,
                    currency=p.currency,
                    price=price,
                    value=_cents(value),
                    value_base=_cents(value_base),
                ),
                value_base,
            )
        )
    cash = [
        CashBalance(currency=c, amount=a, amount_base=_cents(fx.to_base(a, c))) for c, a in sorted(account.cash.items())
    ]
    positions_base = sum((v for _, v in holdings if v is not None), Decimal(0))
    cash_base = sum((fx.to_base(a, c) for c, a in account.cash.items()), Decimal(0))
    total = positions_base + cash_base
    positions = [
        h.model_copy(update={"weight": (v / total).quantize(WEIGHT, ROUND_HALF_UP)})
        if v is not None and total > 0
        else h
        for h, v in holdings
    ]
    currencies = {p.currency for p in account.positions.values()} | set(account.cash)
    return Summary(
        base=fx.base,
        mode=mode,  # type: ignore[arg-type]
        broker=broker,
        positions=positions,
        cash=cash,
        positions_base=_cents(positions_base),
        cash_base=_cents(cash_base),
        total_base=_cents(total),
        unpriced=unpriced,
        fx={c: fx.rate(c) for c in sorted(currencies)},
        fx_source=fx.source,
        deposits_base=_cents(deposits_base),
        dividends_base=_cents(dividends_base),
        at=at,
    )
