"""Candidate actions for the planner's tests: one share each, fee 1 unless given."""

from __future__ import annotations

from decimal import Decimal

from schemas.planning import Action

D = Decimal


def action(symbol: str, side: str, value: int, fee: int = 1, currency: str = "USD") -> Action:
    return Action(
        kind="buy_underweight" if side == "buy" else "exit",
        symbol=symbol,
        side=side,
        quantity=D(1),
        price=D(value),
        currency=currency,
        value=D(value),
        fee=D(fee),
        value_base=D(value),
        reason=f"{side} {symbol}",
    )


def actions(cands: list[tuple[str, str, int, int, str]]) -> list[Action]:
    """From (symbol, side, value, fee, currency) tuples."""
    return [action(sym, side, value, fee, cur) for sym, side, value, fee, cur in cands]
