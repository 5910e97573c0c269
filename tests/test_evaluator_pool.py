"""An evaluator spreading a large batch over processes (the `multiprocess` package) scores
exactly as one process does, and answers the same."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.evaluator import answer, job
from nodes.evaluator import objective as o
from nodes.evaluator.settings import Settings
from nodes.generator.search import Space
from schemas.planning import Batch


def test_a_batch_split_over_processes_scores_the_same():
    rng = np.random.default_rng(11)
    n, a = 60, 30
    x = rng.normal(size=(n, 200))
    arrays = o.Arrays(
        price=rng.uniform(10, 300, n),
        quantity=rng.integers(0, 30, n).astype(float),
        cash=50000.0,
        targets=np.full(n, 1 / n),
        mu=rng.normal(0.08, 0.04, n),
        cov=x @ x.T / 200 * 0.04,
        action_symbol=rng.integers(0, n, a),
        action_quantity=rng.integers(-5, 10, a).astype(float),
        action_fee=np.full(a, 1.5),
        weights=dict(o.DEFAULT_WEIGHTS),
    )
    seqs = o.pad([list(rng.choice(a, size=int(rng.integers(1, 6)), replace=False)) for _ in range(3000)])
    try:
        pooled, parts = job._scores(Settings(processes=2, parallel_min=1000), arrays, seqs)
        assert parts == {} and job._pool is not None  # it did use the pool
    finally:
        if job._pool is not None:
            job._pool.terminate()
            job._pool = None
    single, _ = o.score_batch(arrays, seqs)
    np.testing.assert_array_equal(pooled, single)


def test_the_best_few_get_their_parts_when_the_pool_scored_them():
    """Scored in several processes, a batch has no parts: the answer computes the best
    few's itself, and is the answer of one process."""
    rng = np.random.default_rng(12)
    n, a = 30, 20
    arrays = o.Arrays(
        price=rng.uniform(10, 300, n),
        quantity=rng.integers(0, 30, n).astype(float),
        cash=50000.0,
        targets=np.full(n, 1 / n),
        mu=rng.normal(0.08, 0.04, n),
        cov=np.eye(n) * 0.04,
        action_symbol=rng.integers(0, n, a),
        action_quantity=rng.integers(1, 10, a).astype(float),
        action_fee=np.full(a, 1.5),
        weights=dict(o.DEFAULT_WEIGHTS),
    )
    none = np.zeros(a, dtype=np.int64)
    space = Space(
        order=np.arange(a)[::-1].copy(),
        rank=np.arange(a)[::-1].copy(),
        currency=none,
        security=none,
        start=np.zeros(1, dtype=np.int64),
        delta=none,
    )
    seqs = np.array([rng.choice(a, size=3, replace=False) for _ in range(400)], dtype=np.int16)
    parent = np.arange(400) // 4
    batch = Batch.model_construct(first=2, stride=3, keep=40)
    scores, parts = o.score_rows(arrays, seqs)
    best, beam = answer.answer(batch, space, arrays, seqs, parent, scores, parts)
    again, same = answer.answer(batch, space, arrays, seqs, parent, scores, {})
    assert same == beam and beam.count == 40 and len(best) == answer.BEST
    assert [(s.sequence, s.order, s.score) for s in again] == [(s.sequence, s.order, s.score) for s in best]
    for x, y in zip(again, best, strict=True):
        assert x.parts == pytest.approx(y.parts)
    # a place: its prefix's place in the round (first + row x stride), then its last action's
    expected = (2 + parent * 3) * a + (a - 1 - seqs[:, -1].astype(np.int64))
    np.testing.assert_array_equal(answer.places(batch, space, seqs, parent), expected)
