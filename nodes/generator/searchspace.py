"""The search space the generator node hands out: the search order and, in exact
amounts, what each action does to its currency's cash (with `PRICE_MARGIN` against it). Plain Python: the generator node
needs no numpy (about 11 MB of RSS at rest); `search.py` grows sequences from it."""

from __future__ import annotations

from decimal import Decimal

from schemas.planning import Action, SearchSpace

MAX_ACTIONS = 32767  # actions are int16 indexes on the wire
# A fill is rarely at the quote the plan was sized at: a sale may bring a little less, a buy
# cost a little more (the paper broker moves every fill 0.1 % against the trader; a market
# order at Tradernet may move more). Sized at the quote, the last buy of a plan that spent
# its cash to the cent was refused for a few dollars (4 times in the replay 2010-2024), so
# the cash rule counts each action this much worse than its quote.
PRICE_MARGIN = Decimal("0.005")


def priority(actions: list[Action]) -> list[int]:
    """Indexes in search order: sells (largest first), then buys (largest first)."""
    return sorted(range(len(actions)), key=lambda i: (actions[i].side != "sell", -actions[i].value_base, i))


def space(
    cycle_id: str, actions: list[Action], cash: dict[str, Decimal], margin: Decimal = PRICE_MARGIN
) -> SearchSpace:
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
        action_cash=[
            a.value * (1 - margin) - a.fee if a.side == "sell" else -(a.value * (1 + margin) + a.fee) for a in actions
        ],
        action_rank=rank,
        action_security=[securities[a.symbol] for a in actions],
    )
