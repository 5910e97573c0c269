"""Feasible action sequences from candidate actions: pure, numpy, no MQTT.

A sequence:

- holds each security at most once (no duplicates, no buy and sell of the same one);
- puts its sells before its buys (their cash pays for the buys);
- never takes the cash of any currency below zero after fees, at any step.

The generator node turns the candidates into a `SearchSpace` (`space`): the search order
(sells first, largest first, then buys, largest first), what each action does to its
currency's cash after its fee, and which actions trade the same security. `expand`
grows prefixes by one action: every later action in the search order that keeps the
rules, carrying the exact cash each prefix leaves. It is one numpy step over all the
prefixes at once, and cash is compared in exact integers (amounts scaled by their
decimal places), never in floats: a sequence that leaves exactly 0 is feasible, one cent
less is not.

Two searches use it:

- the planner's beam (`nodes/coordinator`): round 1 extends the empty sequence, round L
  the W best sequences of round L - 1, on the evaluators, which score what they grow;
  while no round has more than W feasible sequences, nothing is dropped and the beam is
  the exhaustive search;
- `sequences`: the exhaustive search by increasing length in one process, stopped at a
  bound (the benchmark's sequences, and the tests' reference for the rules).

Sequences are B x K int16 matrices of action indexes, -1 after a sequence's end: the
form they travel in (`schemas.planning.SequenceRows`) and the evaluator scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from schemas.planning import Action, SearchSpace

from .searchspace import MAX_ACTIONS, PRICE_MARGIN, priority, space

__all__ = ["MAX_ACTIONS", "Space", "expand", "priority", "rows", "sequences", "space"]

CHUNK_CELLS = 1 << 20  # prefixes x candidates looked at in one numpy step (~8 MB of cash)


@dataclass(frozen=True)
class Settings:
    max_actions: int = 5
    max_sequences: int = 20_000
    margin: Decimal = PRICE_MARGIN  # the cash rule's margin against the quote (`searchspace.PRICE_MARGIN`)


@dataclass(frozen=True)
class Space:
    """A `SearchSpace` as numpy arrays in search order (place r is action `order[r]`)."""

    order: np.ndarray  # A: the action at each place
    rank: np.ndarray  # A: the place of each action
    currency: np.ndarray  # A, by place
    security: np.ndarray  # A, by place
    start: np.ndarray  # C: cash at the start, exact integers
    delta: np.ndarray  # A, by place: cash change, exact integers

    @classmethod
    def of(cls, msg: SearchSpace, depth: int = 10) -> Space:
        rank = np.asarray(msg.action_rank, dtype=np.int64)
        order = np.argsort(rank)
        start, delta = _exact(list(msg.cash), [msg.action_cash[i] for i in order], depth)
        return cls(
            order=order,
            rank=rank,
            currency=np.asarray(msg.action_currency, dtype=np.int64)[order],
            security=np.asarray(msg.action_security, dtype=np.int64)[order],
            start=start,
            delta=delta,
        )

    def __len__(self) -> int:
        return len(self.order)


def expand(sp: Space, prefixes: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every feasible one-action extension of each prefix (an M x L matrix of action
    indexes, no -1), by prefix, then by search order, at most `limit`: the children
    (M' x L+1, int16) and the row of each one's prefix. ValueError for a prefix that
    breaks the rules itself (a batch from the wire may hold anything)."""
    m, width = prefixes.shape
    a = len(sp)
    if np.any(prefixes < 0) or np.any(prefixes >= a):
        raise ValueError(f"a prefix names an action outside 0 .. {a - 1}")
    p = sp.rank[prefixes]  # M x L places
    left = np.tile(sp.start, (m, 1))  # each prefix's cash left, per currency
    for j in range(width):
        left[np.arange(m), sp.currency[p[:, j]]] += sp.delta[p[:, j]]
    held = np.sort(sp.security[p], axis=1)
    if width and (np.any(np.diff(p, axis=1) <= 0) or np.any(left < 0) or np.any(held[:, 1:] == held[:, :-1])):
        raise ValueError("a prefix breaks the rules (out of search order, a security twice, or overdrawn)")
    same = sp.security[:, None] == sp.security[None, :]
    columns = np.arange(a)
    last = p[:, -1] if width else np.full(m, -1)
    rows_out, cols_out = [], []
    found = 0
    bound = limit if limit is not None else m * a
    chunk = max(1, CHUNK_CELLS // max(a, 1))
    for lo in range(0, m, chunk):
        hi = min(lo + chunk, m)
        ok = columns[None, :] > last[lo:hi, None]  # after the prefix's last action: sells first, no repeats
        for j in range(width):
            ok &= ~same[p[lo:hi, j]]  # no second action on a security the prefix holds
        ok &= left[lo:hi][:, sp.currency] + sp.delta[None, :] >= 0  # its currency's cash after it
        rows, cols = np.nonzero(ok)  # row-major: by prefix, then by search order
        rows, cols = rows[: bound - found] + lo, cols[: bound - found]
        rows_out.append(rows)
        cols_out.append(cols)
        found += len(rows)
        if found >= bound:
            break
    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, dtype=np.int64)
    children = np.empty((len(rows), width + 1), dtype=np.int16)
    children[:, :width] = prefixes[rows]
    children[:, width] = sp.order[cols]
    return children, rows


def sequences(actions: list[Action], cash: dict[str, Decimal], s: Settings = Settings()) -> np.ndarray:
    """The exhaustive search in one process: every feasible sequence by increasing length,
    then in search order, up to `max_sequences`, as a B x K matrix (-1 padded)."""
    sp = Space.of(space("search", actions, cash, margin=s.margin))
    levels: list[np.ndarray] = []
    frontier = np.zeros((1, 0), dtype=np.int16)
    left = s.max_sequences
    for _length in range(s.max_actions):
        if not left or not len(frontier):
            break
        frontier, _ = expand(sp, frontier, limit=left)
        left -= len(frontier)
        if len(frontier):
            levels.append(frontier)
    width = levels[-1].shape[1] if levels else 0
    out = np.full((sum(map(len, levels)), width), -1, dtype=np.int16)
    row = 0
    for level in levels:
        out[row : row + len(level), : level.shape[1]] = level
        row += len(level)
    return out


def _exact(cash: list[Decimal], changes: list[Decimal], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Cash and the changes as integers of the smallest decimal place any of them uses:
    int64 when any sum of `depth` of them fits, Python integers (exact, slower) if not."""
    exponents = [d.as_tuple().exponent for d in (*cash, *changes)]
    places = max([-e for e in exponents if isinstance(e, int)], default=0)
    places = max(places, 0)

    def scaled(d: Decimal) -> int:
        sign, digits, exponent = d.as_tuple()
        assert isinstance(exponent, int)  # Money is finite
        n = int("".join(map(str, digits)) or "0") * 10 ** (exponent + places)
        return -n if sign else n

    start, delta = [scaled(d) for d in cash], [scaled(d) for d in changes]
    reach = max(map(abs, start), default=0) + depth * max(map(abs, delta), default=0)
    dtype = np.int64 if reach < 2**62 else object
    return np.array(start, dtype=dtype), np.array(delta, dtype=dtype)


def rows(matrix: np.ndarray) -> list[list[int]]:
    """The matrix as lists of action indexes (for reading, tests and plans)."""
    return [[int(i) for i in r if i >= 0] for r in matrix]
