"""The planner's objective: how good the portfolio at the end of an action sequence is.
Pure numpy, vectorised over a batch of sequences; `score_loop` is the same objective
one sequence at a time in plain Python, the benchmark's baseline and the tests' check.

For a sequence, apply its actions to the holdings (quantities in shares, prices and fees
in the base currency); with V the total value after fees (holdings + cash), w the weights
of the holdings in V (w = value / V) and h their weights among themselves (h = value / H,
H the holdings' value):

| part            | formula                                  | meaning                                        |
| --------------- | ---------------------------------------- | ---------------------------------------------- |
| `distance`      | sum of abs(w - target), cash included    | how far from the targets (0..2)                |
| `return`        | h . mu                                   | expected annual return of what is invested     |
| `risk`          | sqrt(h' Cov h)                           | expected annual volatility of what is invested |
| `diversification` | (sum h)^2 / sum h^2 / n                | effective number of holdings h per security (0: none) |
| `cost`          | fees / V                                 | what the sequence pays its broker              |

    score = -distance_w x distance + return_w x return - risk_w x risk
            + diversification_w x diversification - cost_w x cost

with default weights 1, 0.5, 0.5, 0.1 and 10 (`DEFAULT_WEIGHTS`): closeness to the targets
leads (the optimiser already balanced return and risk), expected return and risk refine
it, diversification breaks ties, and each 0.1 % of the portfolio paid in fees costs as much
as 1 percentage point of distance. Cash is one more holding in the distance, whose target
is the problem's `cash_target` (the reserve): so a sale that only moves money from an
overweight holding into idle cash gains nothing (it moves the distance from one line to
the other), and its fee makes it lose; a sale that pays for a buy of an underweight gains
twice. Return and risk are those of the holdings, not of V: measured on V, cash (no risk)
made every sale into cash look like a gain in risk larger than its loss in return for any
stock more volatile than its expected return (most), and the planner sold into idle cash.

A sequence that would end with negative cash or a negative holding, or trade more than the
problem's `budget_base` (the daily limit left) in all, scores -inf (the generator never
makes the first two; the evaluator checks anyway).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from nodes import matrix
from schemas.planning import Problem

from .weights import DEFAULT_WEIGHTS as DEFAULT_WEIGHTS


@dataclass(frozen=True)
class Arrays:
    """A cycle's problem as numpy arrays (built once per cycle and worker)."""

    price: np.ndarray  # n, base currency
    quantity: np.ndarray  # n
    cash: float
    targets: np.ndarray  # n
    mu: np.ndarray  # n
    cov: np.ndarray  # n x n
    action_symbol: np.ndarray  # a, int
    action_quantity: np.ndarray  # a, signed
    action_fee: np.ndarray  # a
    weights: dict[str, float]
    cash_target: float = 0.0  # the share of V the targets leave in cash
    budget: float = math.inf  # the most a sequence may trade, in all (base currency)

    @property
    def n(self) -> int:
        return len(self.price)

    @cached_property
    def around(self) -> Around:
        return Around.of(self)


@dataclass(frozen=True)
class Around:
    """The current portfolio's terms, computed once per cycle: every sequence's score is
    these plus what its K actions change."""

    v0: np.ndarray  # n, values held now
    cv0: np.ndarray  # n, Cov v0
    var: float  # v0' Cov v0
    squares: float  # v0' v0
    ret: float  # v0' mu
    held: float  # sum v0
    negative: int  # holdings below zero now
    breaks: np.ndarray  # m, sorted v0 / target over the securities with a target
    cum_weight: np.ndarray  # m + 1, running sum of |target| in that order
    cum_value: np.ndarray  # m + 1, running sum of |target| x break
    untargeted: float  # sum |v0| over the securities without a target

    @classmethod
    def of(cls, a: Arrays) -> Around:
        v0 = a.quantity * a.price
        cv0 = a.cov @ v0
        has = a.targets != 0
        breaks = v0[has] / a.targets[has]
        order = np.argsort(breaks, kind="stable")
        weight = np.abs(a.targets[has])[order]
        return cls(
            v0=v0,
            cv0=cv0,
            var=float(v0 @ cv0),
            squares=float(v0 @ v0),
            ret=float(v0 @ a.mu),
            held=float(v0.sum()),
            negative=int((v0 < -1e-9).sum()),
            breaks=breaks[order],
            cum_weight=np.concatenate([[0.0], np.cumsum(weight)]),
            cum_value=np.concatenate([[0.0], np.cumsum(weight * breaks[order])]),
            untargeted=float(np.abs(v0[~has]).sum()),
        )

    def spread(self, total: np.ndarray) -> np.ndarray:
        """sum over all securities of |v0 - target x V| for each total V (B): with
        |t| |v0/t - V| piecewise linear in V, one binary search and two running sums."""
        k = np.searchsorted(self.breaks, total)
        w, q = self.cum_weight, self.cum_value
        return total * (2 * w[k] - w[-1]) + (q[-1] - 2 * q[k]) + self.untargeted


def arrays(p: Problem) -> Arrays:
    return Arrays(
        price=np.asarray(p.price_base, float),
        quantity=np.asarray(p.quantity, float),
        cash=float(p.cash_base),
        targets=np.asarray(p.targets, float),
        mu=np.asarray(p.mu, float),
        cov=matrix.decode(p.cov_b64, len(p.symbols)),
        action_symbol=np.asarray(p.action_symbol, int),
        action_quantity=np.asarray(p.action_quantity, float),
        action_fee=np.asarray(p.action_fee_base, float),
        weights={**DEFAULT_WEIGHTS, **p.weights},
        cash_target=p.cash_target,
        budget=math.inf if p.budget_base is None else p.budget_base,
    )


def pad(sequences: list[list[int]], k: int | None = None) -> np.ndarray:
    """Sequences as a B x K int matrix, -1 where a sequence is shorter."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    k = max(k or 0, int(lengths.max(initial=0)), 1)
    out = np.full((len(sequences), k), -1, dtype=np.int64)
    rows = np.repeat(np.arange(len(sequences)), lengths)
    cols = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, cols] = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64, count=len(rows))
    return out


def score_batch(a: Arrays, seqs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Scores (B) and parts (each B) of a B x K matrix of action indexes (-1: none).

    Every sequence changes at most K of the n holdings, so each term is expanded around
    the current portfolio v0 (values in the base currency), with dv the sequence's
    changes: v'Cv = v0'Cv0 + 2 dv'(Cv0) + dv'C dv, the same for v'v, and the distance
    through `Around.spread` (its sum over the untouched holdings is one lookup). A batch
    costs B x K x K, never B x n: its temporaries stay in the cache, which is what lets
    two workers on two cores run at twice the speed of one."""
    # positions first (K x B): every numpy step runs along the batch, not along K <= 10
    seq = np.ascontiguousarray(seqs.T)
    valid = seq >= 0
    idx = np.where(valid, seq, 0)
    if np.any(idx >= len(a.action_symbol)):
        raise ValueError("a sequence names an action the cycle does not have")
    z = a.around
    k = seq.shape[0]
    sym = a.action_symbol[idx]  # K x B
    dv = np.where(valid, a.action_quantity[idx], 0.0) * a.price[sym]  # K x B value changes
    fee = np.where(valid, a.action_fee[idx], 0.0).sum(axis=0)  # B
    bought = dv.sum(axis=0)  # B, net value bought
    cash = a.cash - bought - fee
    held = z.held + bought
    total = held + cash
    pair_cov = a.cov.ravel().take(sym[:, None, :] * a.n + sym[None, :, :])  # K x K x B
    var_v = z.var + 2 * (dv * z.cv0[sym]).sum(axis=0) + (dv[:, None, :] * pair_cov * dv[None, :, :]).sum(axis=(0, 1))
    # a security's change summed over the positions holding it (a batch from the wire may
    # repeat one); empty positions get symbols of their own, so they never match
    own = np.where(valid, sym, -1 - np.arange(k)[:, None])
    same = own[:, None, :] == own[None, :, :]  # K x K x B
    change = (same * dv[None, :, :]).sum(axis=1)  # K x B
    before = z.v0[sym]  # K x B, value held now
    sq_v = z.squares + 2 * (dv * before).sum(axis=0) + (dv * change).sum(axis=0)
    # each security a sequence touches, once (at its first position), with its value after
    first = valid.copy()
    for j in range(1, k):
        first[j] &= ~same[j, :j].any(axis=0)
    after = before + change
    aim = a.targets[sym] * total
    moved = np.where(first, np.abs(after - aim) - np.abs(before - aim), 0.0)
    negative = z.negative - (first & (before < -1e-9)).sum(axis=0) + (first & (after < -1e-9)).sum(axis=0)
    idle = np.abs(cash - a.cash_target * total)
    parts = {
        "distance": (z.spread(total) + moved.sum(axis=0) + idle) / np.abs(total),
        "return": np.where(held > 1e-9, (z.ret + (dv * a.mu[sym]).sum(axis=0)) / np.maximum(held, 1e-9), 0.0),
        "risk": np.where(held > 1e-9, np.sqrt(np.maximum(var_v, 0.0)) / np.maximum(held, 1e-9), 0.0),
        "diversification": np.where(sq_v > 1e-12, held**2 / np.maximum(sq_v, 1e-12), 0.0) / a.n,
        "cost": fee / total,
    }
    w = a.weights
    score = (
        -w["distance"] * parts["distance"]
        + w["return"] * parts["return"]
        - w["risk"] * parts["risk"]
        + w["diversification"] * parts["diversification"]
        - w["cost"] * parts["cost"]
    )
    over = np.abs(dv).sum(axis=0) > a.budget + 1e-9
    return np.where((cash < -1e-9) | (negative > 0) | over, -np.inf, score), parts


# sequences per numpy pass, measured where it runs, in the evaluator's handler thread: the deep
# search of bench/planner.py scored in 1.28 s in passes of 1,000 and 1.60 s in passes of 5,000
# (in a plain script, on its main thread, larger passes win: the node's figure is the one that counts)
CHUNK_ROWS = 1000


def score_rows(a: Arrays, seqs: np.ndarray, chunk: int = CHUNK_ROWS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`score_batch` over any number of sequences, `chunk` at a time, so that a pass's
    K x K x B temporaries stay small."""
    if len(seqs) <= chunk:
        return score_batch(a, seqs)
    done = [score_batch(a, seqs[i : i + chunk]) for i in range(0, len(seqs), chunk)]
    return np.concatenate([d[0] for d in done]), {k: np.concatenate([d[1][k] for d in done]) for k in done[0][1]}


def score_loop(a: Arrays, sequences: list[list[int]]) -> list[float]:
    """The same objective, one sequence at a time in plain Python (the baseline)."""
    price, cov, mu, targets = a.price.tolist(), a.cov.tolist(), a.mu.tolist(), a.targets.tolist()
    base_qty = a.quantity.tolist()
    act_sym, act_q, act_fee = a.action_symbol.tolist(), a.action_quantity.tolist(), a.action_fee.tolist()
    k = a.weights
    n = len(price)
    out = []
    for seq in sequences:
        qty = list(base_qty)
        cash, fees, traded = a.cash, 0.0, 0.0
        for i in seq:
            s = act_sym[i]
            qty[s] += act_q[i]
            cash -= act_q[i] * price[s] + act_fee[i]
            fees += act_fee[i]
            traded += abs(act_q[i] * price[s])
        values = [q * p for q, p in zip(qty, price, strict=True)]
        invested = sum(values)
        total = invested + cash
        w = [v / total for v in values]
        distance = sum(abs(wi - ti) for wi, ti in zip(w, targets, strict=True)) + abs(cash / total - a.cash_target)
        h = [v / invested if invested > 1e-9 else 0.0 for v in values]
        ret = sum(hi * m for hi, m in zip(h, mu, strict=True))
        held = [i for i in range(n) if h[i] != 0.0]
        var = sum(h[i] * h[j] * cov[i][j] for i in held for j in held)
        risk = math.sqrt(max(var, 0.0))
        squares = sum(v * v for v in values)
        div = sum(values) ** 2 / squares / n if squares > 1e-12 else 0.0
        cost = fees / total
        score = (
            -k["distance"] * distance
            + k["return"] * ret
            - k["risk"] * risk
            + k["diversification"] * div
            - k["cost"] * cost
        )
        out.append(-math.inf if cash < -1e-9 or min(qty) < -1e-9 or traded > a.budget + 1e-9 else score)
    return out


def top(scores: np.ndarray, orders: np.ndarray, keep: int) -> np.ndarray:
    """Indexes of the `keep` best finite scores, best first; ties go to the lower order (a
    sequence's place in its round), so the answer does not depend on how the work was
    split. Only the chosen are sorted: a partition finds the `keep`-th best score first."""
    chosen = np.flatnonzero(np.isfinite(scores))
    if keep < len(chosen):
        s = scores[chosen]
        kth = np.partition(s, len(s) - keep)[len(s) - keep]  # the keep-th best score
        tied = chosen[s == kth]
        above = chosen[s > kth]
        chosen = np.concatenate([above, tied[np.argsort(orders[tied], kind="stable")][: keep - len(above)]])
    return chosen[np.lexsort((orders[chosen], -scores[chosen]))]
