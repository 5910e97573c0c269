"""A cycle's bookkeeping, pure: the problem from the states, the batches out and their
results in, re-dispatch of late batches, and the best sequence. No MQTT, no clock of its
own (the caller passes `now`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from nodes import matrix
from nodes.brokers.fx import Rates
from nodes.evaluator import objective
from schemas.optimization import Inputs, Targets
from schemas.planning import Action, Batch, BatchResult, Problem, Scored
from schemas.portfolio import Summary


def problem(cycle_id: str, summary: Summary, targets: Targets, inputs: Inputs | None, actions: list[Action],
            quotes: dict[str, Decimal], fx: Rates, weights: dict[str, float]) -> tuple[Problem, list[str]]:
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
    p = Problem(cycle_id=cycle_id, symbols=symbols, price_base=price, quantity=qty, cash_base=float(summary.cash_base),
                targets=[target.get(s, 0.0) for s in symbols], mu=[float(x) for x in mu], cov_b64=matrix.encode(cov),
                action_symbol=[index[a.symbol] for a in actions],
                action_quantity=[float(a.quantity) * (1 if a.side == "buy" else -1) for a in actions],
                action_fee_base=[float(fx.to_base(a.fee, a.currency)) for a in actions], weights=weights)
    return p, notes


@dataclass
class Dispatch:
    """Which batches are out, since when, and what came back. Each result costs the same
    whatever the number of batches (a cycle may have thousands)."""

    cycle_id: str
    batches: list[Batch]
    timeout_s: float
    sent_at: dict[int, float] = field(default_factory=dict)
    results: dict[int, BatchResult] = field(default_factory=dict)
    redispatched: int = 0
    _best: Scored | None = None

    def __post_init__(self) -> None:
        self._open = {b.batch: b for b in self.batches}  # no result yet

    def due(self, now: float) -> list[Batch]:
        """Batches never sent or whose result is late: (re)send these now."""
        late = [b for n, b in self._open.items() if n not in self.sent_at or now - self.sent_at[n] > self.timeout_s]
        self.redispatched += sum(1 for b in late if b.batch in self.sent_at)
        for b in late:
            self.sent_at[b.batch] = now
        return late

    def take(self, result: BatchResult) -> bool:
        """Keep a result; False for another cycle's, or a batch answered already (a re-sent
        batch may be answered twice: the first answer counts, both are the same)."""
        if result.cycle_id != self.cycle_id or result.batch not in self._open:
            return False
        del self._open[result.batch]
        self.results[result.batch] = result
        for s in result.best:
            if self._best is None or (s.score, -s.sequence) > (self._best.score, -self._best.sequence):
                self._best = s
        return True

    def done(self) -> bool:
        return not self._open

    def next_deadline(self, now: float) -> float:
        waiting = [self.sent_at[n] + self.timeout_s for n in self._open if n in self.sent_at]
        return max(min(waiting, default=now) - now, 0.0)

    def best(self) -> Scored | None:
        """The best sequence over all results; ties go to the lower index, so the answer
        is the same however the batches were spread over the workers."""
        return self._best

    def workers(self) -> list[str]:
        return sorted({r.worker for r in self.results.values()})


def baseline(p: Problem) -> tuple[float, dict[str, float]]:
    """The score of doing nothing."""
    scores, parts = objective.score_batch(objective.arrays(p), objective.pad([[]], k=1))
    return float(scores[0]), {k: float(v[0]) for k, v in parts.items()}
