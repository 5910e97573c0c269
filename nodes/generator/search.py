"""Feasible action sequences from candidate actions: pure, numpy, no MQTT.

The search is exhaustive by increasing length: every sequence of 1 action, then of 2, up
to `max_actions`, in the candidates' priority order (sells first, then buys by value),
and stops at `max_sequences`. A sequence:

- holds each security at most once (no duplicates, no buy and sell of the same one);
- puts its sells before its buys (their cash pays for the buys);
- never takes the cash of any currency below zero after fees, at any step.

A longer sequence is extended only from a feasible shorter one (a prefix that is
infeasible stays infeasible), carrying the cash it leaves, so the work is bounded by the
number of sequences kept times the number of candidates, not by all combinations. Each
length is one numpy step over all its prefixes at once (in chunks, to bound memory):
the search is not the serial bottleneck of a cycle that the evaluators' fan-out would
wait on. Cash is compared in exact integers (amounts scaled by their decimal places),
never in floats: a sequence that leaves exactly 0 is feasible, one cent less is not.

The result is a B x K int16 matrix of action indexes, -1 after a sequence's end: the
form it travels in (`schemas.planning.SequenceRows`) and the evaluator scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from schemas.planning import Action

CHUNK_CELLS = 1 << 20  # prefixes x candidates looked at in one numpy step (~8 MB of cash)


@dataclass(frozen=True)
class Settings:
    max_actions: int = 5
    max_sequences: int = 20_000


def priority(actions: list[Action]) -> list[int]:
    """Indexes in search order: sells (largest first), then buys (largest first)."""
    return sorted(range(len(actions)), key=lambda i: (actions[i].side != "sell", -actions[i].value_base, i))


def sequences(actions: list[Action], cash: dict[str, Decimal], s: Settings = Settings()) -> np.ndarray:
    """Feasible sequences as a B x K int16 matrix of action indexes (-1: no action), in a
    deterministic order: by length, then by the priority of their actions."""
    if len(actions) > np.iinfo(np.int16).max:
        raise ValueError(f"{len(actions)} candidate actions: at most {np.iinfo(np.int16).max}")
    order = np.array(priority(actions), dtype=np.int64)
    # everything below is in priority ("rank") order: column r is action order[r]
    currencies = sorted({a.currency for a in actions})
    cur = np.array([currencies.index(actions[i].currency) for i in order], dtype=np.int64)
    security = np.unique([actions[i].symbol for i in order], return_inverse=True)[1].reshape(-1)
    same = security[:, None] == security[None, :]
    changes = [a.value - a.fee if a.side == "sell" else -(a.value + a.fee) for a in (actions[i] for i in order)]
    start, delta = _exact([cash.get(c, Decimal(0)) for c in currencies], changes, s.max_actions)
    columns = np.arange(len(order))

    levels: list[np.ndarray] = []
    kept = 0
    prefix = np.zeros((1, 0), dtype=np.int64)  # the empty sequence
    left = start[None, :]
    for _length in range(1, s.max_actions + 1):
        if kept >= s.max_sequences or not len(prefix) or not len(order):
            break
        chunk = max(1, CHUNK_CELLS // len(order))
        found_p, found_l = [], []
        for lo in range(0, len(prefix), chunk):
            p, cash_left = prefix[lo:lo + chunk], left[lo:lo + chunk]
            last = p[:, -1] if p.shape[1] else np.full(len(p), -1)
            ok = columns[None, :] > last[:, None]  # after the prefix's last action: sells first, no repeats
            for j in range(p.shape[1]):
                ok &= ~same[p[:, j]]  # no second action on a security the prefix holds
            after = cash_left[:, cur] + delta[None, :]  # its currency's cash after each candidate
            ok &= after >= 0
            rows, cols = np.nonzero(ok)  # row-major: by prefix, then by the candidate's priority
            rows, cols = rows[:s.max_sequences - kept], cols[:s.max_sequences - kept]
            grown = cash_left[rows].copy()
            grown[np.arange(len(rows)), cur[cols]] = after[rows, cols]
            found_p.append(np.column_stack([p[rows], cols]))
            found_l.append(grown)
            kept += len(rows)
            if kept >= s.max_sequences:
                break
        prefix = np.concatenate(found_p)
        left = np.concatenate(found_l)
        if len(prefix):
            levels.append(prefix)
    width = levels[-1].shape[1] if levels else 0
    out = np.full((kept, width), -1, dtype=np.int16)
    row = 0
    for level in levels:
        out[row:row + len(level), :level.shape[1]] = order[level]
        row += len(level)
    return out


def _exact(cash: list[Decimal], changes: list[Decimal], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Cash and the changes as integers of the smallest decimal place any of them uses:
    int64 when any sum of `depth` of them fits, Python integers (exact, slower) if not."""
    places = max((-d.as_tuple().exponent for d in (*cash, *changes) if isinstance(d.as_tuple().exponent, int)),
                 default=0)
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
