"""A cycle's bookkeeping, pure: the problem from the states, each search round's batches
out and their results in, re-dispatch of late batches, the next round's frontier, and
the best sequence. No MQTT, no clock of its own (the caller passes `now`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from nodes import matrix
from nodes.evaluator import objective
from nodes.money.fx import Rates
from schemas.optimization import Inputs, Targets
from schemas.planning import Action, Batch, BatchResult, Problem, Scored, SearchSpace
from schemas.portfolio import Summary

log = logging.getLogger(__name__)


def problem(cycle_id: str, summary: Summary, targets: Targets, inputs: Inputs | None, actions: list[Action],
            quotes: dict[str, Decimal], fx: Rates, weights: dict[str, float],
            space: SearchSpace) -> tuple[Problem, list[str]]:
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
                action_fee_base=[float(fx.to_base(a.fee, a.currency)) for a in actions], weights=weights,
                space=space)
    return p, notes


SPREAD, SPREAD_MIN = 8, 1000  # a round is split in at least 8 batches when each grows 1,000 or more


def round_batches(cycle_id: str, rnd: int, frontier: np.ndarray, rank: np.ndarray, size: int,
                  width: int) -> list[Batch]:
    """The round's prefixes in batches that grow about `size` sequences each (counting every
    later action in the search order: an upper bound, cheap to know). Batch j holds every
    n-th prefix from the j-th: each batch has prefixes from the top and the bottom of the
    round, so its share of the beam (`width / n` best, `keep`) is close to its share of
    the round's `width` best, and only about `width` sequences come back, not all."""
    if not len(frontier):
        return []
    grows = int((len(rank) - 1 - rank[frontier[:, -1]]).sum()) if frontier.shape[1] else len(rank)
    # about `size` each, but a round with work for several workers gets SPREAD batches at least
    n = max(1, min(len(frontier), max(-(-grows // max(size, 1)), min(SPREAD, grows // SPREAD_MIN))))
    keep = -(-width // n)
    # rows just computed here: built without a second validation (each evaluator validates
    # what it receives)
    return [Batch.model_construct(cycle_id=cycle_id, round=rnd, batch=j, first=j, stride=n, keep=keep,
                                  reply_to="coordinator", **matrix.encode_rows(frontier[j::n]))
            for j in range(n)]


@dataclass
class Dispatch:
    """One round: which batches are out, since when, and what came back. Each result costs
    the same whatever the number of batches (a round may have thousands)."""

    cycle_id: str
    round: int
    batches: list[Batch]
    timeout_s: float
    sent_at: dict[int, float] = field(default_factory=dict)
    results: dict[int, BatchResult] = field(default_factory=dict)
    redispatched: int = 0
    evaluated: int = 0
    beams: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
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
        """Keep a result; False for another cycle's or round's, or a batch answered already
        (a re-sent batch may be answered twice: the first answer counts, both are the same)."""
        if result.cycle_id != self.cycle_id or result.round != self.round or result.batch not in self._open:
            return False
        b = result.beam
        try:  # read as it comes, while the workers go on: not at the end of the round
            self.beams[result.batch] = (matrix.decode_rows(b.rows_b64, b.count, b.width),
                                        matrix.decode_vector(b.scores_b64, "<f8", b.count),
                                        matrix.decode_vector(b.orders_b64, "<i8", b.count))
        except ValueError as exc:  # the batch stays open: it is sent again when late
            log.warning("cycle %s: result of batch %d cannot be read: %s", self.cycle_id, result.batch, exc)
            return False
        del self._open[result.batch]
        self.results[result.batch] = result
        self.evaluated += result.evaluated
        for s in result.best:
            if self._best is None or (s.score, -s.order) > (self._best.score, -self._best.order):
                self._best = s
        return True

    def done(self) -> bool:
        return not self._open

    def next_deadline(self, now: float) -> float:
        waiting = [self.sent_at[n] + self.timeout_s for n in self._open if n in self.sent_at]
        return max(min(waiting, default=now) - now, 0.0)

    def best(self) -> Scored | None:
        """The round's best sequence; ties go to the lower place, so the answer is the same
        however the batches were spread over the workers."""
        return self._best


@dataclass
class Search:
    """The rounds of a cycle's beam: what was evaluated, the best so far, the frontier."""

    width: int
    evaluated: int = 0
    rounds: int = 0
    batches: int = 0
    redispatched: int = 0
    exhaustive: bool = True
    workers: set[str] = field(default_factory=set)
    best: Scored | None = None

    def close(self, d: Dispatch, last: bool) -> np.ndarray:
        """Take a finished round; the next round's frontier (none after the `last`): the
        `width` best of what its batches sent back, each its share (ties: the lower
        place), in an order that does not depend on who evaluated what, or when."""
        results = [d.results[b.batch] for b in d.batches]  # in batch order, whatever order they came in
        self.evaluated += d.evaluated
        self.batches += len(d.batches)
        self.redispatched += d.redispatched
        self.workers.update(r.worker for r in results)
        if d.evaluated:
            self.rounds = d.round
        found = d.best()  # earlier rounds win ties: fewer orders for the same score
        if found is not None and (self.best is None or found.score > self.best.score):
            self.best = found
        if last:
            return np.zeros((0, d.round), dtype=np.int16)
        keep = {b.batch: b.keep for b in d.batches}
        if any(r.evaluated > keep[r.batch] for r in results):
            self.exhaustive = False  # a batch grew more than its share: some are not grown further
        beams = [d.beams[b.batch] for b in d.batches if len(d.beams[b.batch][0])]
        if not beams:
            return np.zeros((0, d.round), dtype=np.int16)
        rows, scores, orders = (np.concatenate(part) for part in zip(*beams, strict=True))
        if len(rows) <= self.width:
            return rows  # all of them go on, in batch order: no need to sort
        self.exhaustive = False
        return rows[objective.top(scores, orders, self.width)]


def baseline(p: Problem) -> tuple[float, dict[str, float]]:
    """The score of doing nothing."""
    scores, parts = objective.score_batch(objective.arrays(p), objective.pad([[]], k=1))
    return float(scores[0]), {k: float(v[0]) for k, v in parts.items()}
