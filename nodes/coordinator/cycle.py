"""What a cycle starts from, pure: the evaluators' problem from the other nodes' states,
and the score of doing nothing under it (the search itself: `beam.py`); and what its
verdict means for the portfolio, for people (`explained`). The currency exchanges the
buys need are not searched: the search spends the cash as it will be after them
(`after_exchanges`), and a plan that buys in a currency they bring sends them first
(`with_exchanges`). No MQTT."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

import numpy as np

from nodes import matrix
from nodes.evaluator import objective
from nodes.money.fx import Rates
from nodes.money.pairs import parse
from nodes.opportunity.exchanges import needs
from schemas.optimization import Inputs, Targets
from schemas.planning import Action, Problem, SearchSpace, WeightChange
from schemas.portfolio import Summary

from .beam import Verdict


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
    aims: Mapping[str, Decimal] | None = None,
    cash_target: Decimal = Decimal(0),
    budget: Decimal | None = None,
) -> tuple[Problem, list[str]]:
    """The evaluators' problem, and notes on what had to be assumed. `aims`: the weights the
    opportunity node's candidates aim at (the targets it can reach; None: the optimiser's),
    `cash_target` the reserve they leave in cash, `budget` the most the orders may trade."""
    notes: list[str] = []
    held = {p.symbol: p for p in summary.positions}
    target = {s: float(w) for s, w in aims.items()} if aims else {x.symbol: float(x.weight) for x in targets.targets}
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
        cash_target=float(cash_target),
        budget_base=None if budget is None else float(budget),
    )
    return p, notes


def baseline(p: Problem) -> tuple[float, dict[str, float]]:
    """The score of doing nothing."""
    scores, parts = objective.score_batch(objective.arrays(p), objective.pad([[]], k=1))
    return float(scores[0]), {k: float(v[0]) for k, v in parts.items()}


def holdings(p: Problem, sequence: list[int]) -> tuple[float, list[WeightChange]]:
    """The portfolio's value now (holdings and cash, base currency), and each security's
    weight before and after `sequence` (after its fees), with its target: every security
    held, aimed at or traded."""
    price = np.asarray(p.price_base, float)
    before = np.asarray(p.quantity, float) * price
    after = before.copy()
    cash = p.cash_base
    for i in sequence:
        s = p.action_symbol[i]
        after[s] += p.action_quantity[i] * price[s]
        cash -= p.action_quantity[i] * price[s] + p.action_fee_base[i]
    total_before = float(before.sum()) + p.cash_base
    total_after = float(after.sum()) + cash
    rows = [
        WeightChange(
            symbol=sym,
            before=float(before[k]) / total_before if total_before else 0.0,
            after=float(after[k]) / total_after if total_after else 0.0,
            target=p.targets[k],
        )
        for k, sym in enumerate(p.symbols)
        if before[k] or after[k] or p.targets[k]
    ]
    return total_before, rows


def explained(verdict: Verdict, p: Problem, base: str) -> Verdict:
    """The verdict with what its best sequence does to the portfolio (`holdings`), in its
    evaluation and in the plan it proposes, for people to read."""
    if verdict.evaluation is None:
        return verdict
    value, rows = holdings(p, verdict.sequence)
    evaluation = verdict.evaluation.model_copy(update={"base": base, "value_base": value, "holdings": rows})
    proposal = verdict.proposal.model_copy(update={"evaluation": evaluation}) if verdict.proposal else None
    return replace(verdict, evaluation=evaluation, proposal=proposal)


def after_exchanges(cash: Mapping[str, Decimal], exchanges: list[Action], margin: Decimal) -> dict[str, Decimal]:
    """The cash per currency once `exchanges` (the opportunity node's) are filled, each at
    `margin` worse than its quote and after its fee: what the search may spend."""
    out = dict(cash)
    for a in exchanges:
        for currency, change in _exchanged(a, margin).items():
            out[currency] = out.get(currency, Decimal(0)) + change
    return out


def _exchanged(a: Action, margin: Decimal) -> dict[str, Decimal]:
    """What an exchange does to the cash per currency, filled `margin` worse, fee paid."""
    pair = parse(a.symbol)
    if pair is None:
        raise ValueError(f"{a.symbol} is not a currency pair: not an exchange")
    return pair.moves(a.side, a.quantity, a.price * (1 - margin if a.side == "sell" else 1 + margin), a.fee)


def with_exchanges(verdict: Verdict, exchanges: list[Action], cash: Mapping[str, Decimal], margin: Decimal) -> Verdict:
    """The verdict's plan with the exchanges its buys need sent first: of those that bring a
    currency the plan buys in, as many as cover what its buys (fees and `margin` included)
    lack of `cash` in it; a plan whose buys the cash covers exchanges nothing. Whole orders:
    what the last one brings beyond the buys waits in that currency for the next cycle's."""
    if verdict.proposal is None or not exchanges:
        return verdict
    plan = verdict.proposal  # a plan trades a security once: its buys' needs are those of `needs`
    short = {c: need - cash.get(c, Decimal(0)) for c, need in needs(plan.actions, margin).items()}
    needed = []
    for a in exchanges:
        pair = parse(a.symbol)
        if pair is None or short.get(pair.brings(a.side), Decimal(0)) <= 0:
            continue
        needed.append(a)
        short[pair.brings(a.side)] -= _exchanged(a, margin)[pair.brings(a.side)]
    if not needed:
        return verdict
    reasons = [
        plan.reasons[0],
        *[f"{a.side} {a.quantity} {a.symbol}: {a.reason}" for a in needed],
        *plan.reasons[1:],
    ]
    proposal = plan.model_copy(update={"actions": [*needed, *plan.actions], "reasons": reasons})
    return replace(verdict, proposal=proposal)
