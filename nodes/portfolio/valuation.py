"""Valuing an account and adding up the money moved in and out of it: pure, no MQTT, no
broker. Every amount stays a Decimal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from nodes.brokers.base import Account, CashMove
from nodes.money.fx import Rates
from schemas.portfolio import CashBalance, Holding, NetDeposits, Summary

CENT = Decimal("0.01")
WEIGHT = Decimal("0.000001")


def _cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class Flows:
    """The money moved in and out of the account, in the base currency: what came in
    positive (deposits, dividends), what went out positive too (withdrawals, fees, taxes)."""

    deposits: Decimal = Decimal(0)
    withdrawals: Decimal = Decimal(0)
    dividends: Decimal = Decimal(0)  # net of the tax withheld on them
    fees: Decimal = Decimal(0)
    taxes: Decimal = Decimal(0)  # other than those withheld on dividends


def flows(moves: Iterable[CashMove], fx: Rates) -> Flows:
    """Each kind's total, in the base currency, of these movements (each one once: the store
    keeps them by id). A tax on the same UTC day, in the same currency and for the same
    security (None: not named) as a dividend is the tax withheld on it: it counts against
    the dividends, not in `taxes` (a broker that credits dividends net books none)."""
    moves = list(moves)
    paid_on: set[tuple[date, str, str | None]] = {
        (m.at.date(), m.currency, m.symbol) for m in moves if m.kind == "dividend"
    }
    total = dict.fromkeys(("deposit", "withdrawal", "dividend", "fee", "tax"), Decimal(0))
    for m in moves:
        withheld = m.kind == "tax" and (m.at.date(), m.currency, m.symbol) in paid_on
        kind = "dividend" if withheld else m.kind
        total[kind] += fx.to_base(m.amount, m.currency)
    return Flows(
        deposits=total["deposit"],
        withdrawals=-total["withdrawal"],
        dividends=total["dividend"],
        fees=-total["fee"],
        taxes=-total["tax"],
    )


def summarise(
    account: Account,
    quotes: dict[str, Decimal],
    fx: Rates,
    *,
    mode: str,
    broker: str,
    moved: Flows,
    at: datetime,
) -> Summary:
    """Positions at their latest close and cash, in their currencies and in the base one,
    and the money `moved` in and out (`flows`). A position without a quote is `unpriced`:
    listed, left out of the totals."""
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
        deposits_base=_cents(moved.deposits),
        dividends_base=_cents(moved.dividends),
        withdrawals_base=_cents(moved.withdrawals),
        fees_base=_cents(moved.fees),
        taxes_base=_cents(moved.taxes),
        at=at,
    )


def net_deposits(moves: Iterable[CashMove], fx: Rates) -> list[NetDeposits]:
    """The running total of deposits less withdrawals at the end of each day it changed
    (oldest first), in the base currency at today's rates."""
    totals: dict[date, Decimal] = {}
    running = Decimal(0)
    for move in sorted(moves, key=lambda m: m.at):
        if move.kind in ("deposit", "withdrawal"):
            running += fx.to_base(move.amount, move.currency)
            totals[move.at.date()] = running
    return [NetDeposits(day=d, total_base=v.quantize(Decimal("0.01"))) for d, v in sorted(totals.items())]
