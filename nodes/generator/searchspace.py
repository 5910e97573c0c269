"""The search space the generator node hands out: the search order and, in exact
amounts, what each action does to its currency's cash. Plain Python: the generator node
needs no numpy (about 11 MB of RSS at rest); `search.py` grows sequences from it."""

from __future__ import annotations

from decimal import Decimal

from schemas.planning import Action, SearchSpace

MAX_ACTIONS = 32767  # actions are int16 indexes on the wire


def priority(actions: list[Action]) -> list[int]:
    """Indexes in search order: sells (largest first), then buys (largest first)."""
    return sorted(range(len(actions)), key=lambda i: (actions[i].side != "sell", -actions[i].value_base, i))


def space(cycle_id: str, actions: list[Action], cash: dict[str, Decimal]) -> SearchSpace:
    """The rules for growing sequences of `actions` from `cash`."""
    if len(actions) > MAX_ACTIONS:
        raise ValueError(f"{len(actions)} candidate actions: at most {MAX_ACTIONS}")
    currencies = sorted({a.currency for a in actions})
    rank = [0] * len(actions)
    for r, i in enumerate(priority(actions)):
        rank[i] = r
    securities = {s: n for n, s in enumerate(sorted({a.symbol for a in actions}))}
    return SearchSpace(
        cycle_id=cycle_id,
        currencies=currencies,
        cash=[cash.get(c, Decimal(0)) for c in currencies],
        action_currency=[currencies.index(a.currency) for a in actions],
        action_cash=[a.value - a.fee if a.side == "sell" else -(a.value + a.fee) for a in actions],
        action_rank=rank,
        action_security=[securities[a.symbol] for a in actions],
    )
