"""The evaluator's work in its child process (`nodes/child.py`): a batch's prefixes grown by
one action and every sequence scored, with numpy, so that the worker itself holds no numpy
between cycles (a day apart on a board; a replay's come every few seconds and keep the
child). The child keeps the last cycles' problems, read once each; a batch of a cycle it
has not seen (a new child) raises LookupError, and the node sends it again with its problem.

A ValueError's message is the node's rejection, word for word."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from nodes import matrix
from nodes.generator import search
from schemas.planning import Batch, Beam, Problem, Scored

from . import answer, objective
from .settings import Settings

KEEP_CYCLES = 3

Found = tuple[objective.Arrays, search.Space]
_problems: OrderedDict[str, Found | ValueError] = OrderedDict()  # oldest first
_pool: Any = None  # multiprocess's Pool, started for the first large batch


def prepare(problem: Problem) -> None:
    """Read a cycle's problem (kept with the last few; the error if it cannot be read)."""
    try:
        _problems[problem.cycle_id] = (objective.arrays(problem), search.Space.of(problem.space))
    except ValueError as exc:  # a covariance of the wrong size: the batches will say so
        _problems[problem.cycle_id] = exc
    while len(_problems) > KEEP_CYCLES:
        _problems.popitem(last=False)


def evaluate(batch: Batch, settings: Settings, problem: Problem | None) -> tuple[int, list[Scored], Beam]:
    """The batch grown and scored: how many sequences, the best few with their parts, and
    its share of the beam (`answer.py`)."""
    try:
        prefixes = matrix.decode_rows(batch.rows_b64, batch.count, batch.width)
    except ValueError as exc:
        raise ValueError(f"batch {batch.batch}: {exc}") from None
    if problem is not None:
        prepare(problem)
    found = _problems.get(batch.cycle_id)
    if found is None:
        raise LookupError(f"the problem of cycle {batch.cycle_id} is not in this process")
    if isinstance(found, ValueError):
        raise ValueError(f"cycle {batch.cycle_id}: its problem cannot be read: {found}")
    arrays, space = found
    try:
        seqs, parent = search.expand(space, prefixes)
    except ValueError as exc:
        raise ValueError(f"batch {batch.batch} of cycle {batch.cycle_id}: {exc}") from None
    scores, parts = _scores(settings, arrays, seqs)
    best, beam = answer.answer(batch, space, arrays, seqs, parent, scores, parts)
    return len(seqs), best, beam


def _score_chunk(args: tuple[objective.Arrays, np.ndarray]) -> np.ndarray:
    arrays, seqs = args
    return objective.score_rows(arrays, seqs)[0]


def _scores(settings: Settings, arrays: objective.Arrays, seqs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    global _pool
    procs = settings.processes
    if procs > 1 and len(seqs) >= settings.parallel_min:
        if _pool is None:
            import multiprocess  # dill pickles what the stdlib cannot

            _pool = multiprocess.get_context("spawn").Pool(procs)
        chunks = np.array_split(seqs, procs)
        scores = np.concatenate(_pool.map(_score_chunk, [(arrays, c) for c in chunks]))
        return scores, {}
    return objective.score_rows(arrays, seqs)
