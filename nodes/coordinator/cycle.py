"""What a cycle starts from, pure: the evaluators' problem from the other nodes' states,
and the score of doing nothing under it (the search itself: `beam.py`). No MQTT."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from nodes import matrix
from nodes.evaluator import objective
from nodes.money.fx import Rates
from schemas.optimization import Inputs, Targets
from schemas.planning import Action, Problem, SearchSpace
from schemas.portfolio import Summary


def problem(
    cycle_id: str,
    summary: Summary,
    targets: Targets,
    inputs: Inputs | None,
    actions: list[Action],
    quotes: dict[str, Decimal],
    fx: Rates,
    weights: dict[str, float],
    space: SearchSpace,
) -> tuple[Problem, list[str]]:
    """The evaluators' problem, and notes on what had to be assumed."""
    notes: list[str] = []
    held = {p.symbol: p for p in summary.positions}
    target = {x.symbol: float(x.weight) for x in targets.targets}
    symbols = sorted(set(held) | set(target) | {a.symbol for a in actions})
    currency = {a.symbol: a.currency for a in actions} | {p.symbol: p.currency for p in summary.positions}
    price, qty = [], []
    for s in symbols:
        close = quotes.get(s)
        if close is None:
            close = held[s].price if s in held and held[s].price is not None else None
        if close is None:
            notes.append(f"{s}: no price; valued at 0")
        price.append(float(close * fx.rate(currency.get(s, fx.base)) if close is not None else 0.0))
        qty.append(float(held[s].quantity) if s in held else 0.0)
    index = {s: i for i, s in enumerate(symbols)}
    n = len(symbols)
    mu = np.zeros(n)
    cov = np.zeros((n, n))
    if inputs is not None:
        src = {s: i for i, s in enumerate(inputs.symbols)}
        full = matrix.decode(inputs.cov_b64, len(inputs.symbols))
        have = [s for s in symbols if s in src]
        for s in have:
            mu[index[s]] = inputs.mu[src[s]]
        rows = [index[s] for s in have]
        cols = [src[s] for s in have]
        cov[np.ix_(rows, rows)] = full[np.ix_(cols, cols)]
        missing = [s for s in symbols if s not in src]
        if missing:
            notes.append(f"no expected return or risk for {', '.join(missing)} (not in the optimisation): 0 assumed")
    else:
        notes.append("no optimisation inputs yet: expected return and risk count as 0")
    p = Problem(
        cycle_id=cycle_id,
        symbols=symbols,
        price_base=price,
        quantity=qty,
        cash_base=float(summary.cash_base),
        targets=[target.get(s, 0.0) for s in symbols],
        mu=[float(x) for x in mu],
        cov_b64=matrix.encode(cov),
        action_symbol=[index[a.symbol] for a in actions],
        action_quantity=[float(a.quantity) * (1 if a.side == "buy" else -1) for a in actions],
        action_fee_base=[float(fx.to_base(a.fee, a.currency)) for a in actions],
        weights=weights,
        space=space,
    )
    return p, notes


def baseline(p: Problem) -> tuple[float, dict[str, float]]:
    """The score of doing nothing."""
    scores, parts = objective.score_batch(objective.arrays(p), objective.pad([[]], k=1))
    return float(scores[0]), {k: float(v[0]) for k, v in parts.items()}
