"""Feasible action sequences from candidate actions: pure, no MQTT.

The search is exhaustive by increasing length: every sequence of 1 action, then of 2, up
to `max_actions`, in the candidates' priority order (sells first, then buys by value),
and stops at `max_sequences`. A sequence:

- holds each security at most once (no duplicates, no buy and sell of the same one);
- puts its sells before its buys (their cash pays for the buys);
- never takes the cash of any currency below zero after fees, at any step.

A longer sequence is extended only from a feasible shorter one (a prefix that is
infeasible stays infeasible), carrying the cash it leaves, so each extension costs one
addition and the work is bounded by the number of sequences kept, not by all combinations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from schemas.planning import Action


@dataclass(frozen=True)
class Settings:
    max_actions: int = 5
    max_sequences: int = 20_000


def priority(actions: list[Action]) -> list[int]:
    """Indexes in search order: sells (largest first), then buys (largest first)."""
    return sorted(range(len(actions)), key=lambda i: (actions[i].side != "sell", -actions[i].value_base, i))


def sequences(actions: list[Action], cash: dict[str, Decimal], s: Settings = Settings()) -> list[list[int]]:
    """Feasible sequences of action indexes, in a deterministic order."""
    order = priority(actions)
    rank = {i: r for r, i in enumerate(order)}
    # what each action does to its currency's cash, after its fee
    change = [(a.currency, a.value - a.fee if a.side == "sell" else -(a.value + a.fee)) for a in actions]
    out: list[list[int]] = []
    # each partial sequence carries the symbols it holds and the cash it leaves
    level: list[tuple[tuple[int, ...], frozenset[str], dict[str, Decimal]]] = [((), frozenset(), dict(cash))]
    for _length in range(1, s.max_actions + 1):
        nxt: list[tuple[tuple[int, ...], frozenset[str], dict[str, Decimal]]] = []
        for seq, symbols, left in level:
            start = rank[seq[-1]] + 1 if seq else 0
            for i in order[start:]:  # in priority order: sells come before buys within a sequence
                symbol = actions[i].symbol
                if symbol in symbols:
                    continue
                currency, delta = change[i]
                after = left.get(currency, Decimal(0)) + delta
                if after < 0:
                    continue
                cand = (*seq, i)
                out.append(list(cand))
                if len(out) >= s.max_sequences:
                    return out
                nxt.append((cand, symbols | {symbol}, {**left, currency: after}))
        level = nxt
        if not level:
            break
    return out


def batches(seqs: list[list[int]], size: int) -> Iterator[tuple[int, int, list[list[int]]]]:
    """(batch number, index of its first sequence, its sequences)."""
    for n, first in enumerate(range(0, len(seqs), size)):
        yield n, first, seqs[first:first + size]
